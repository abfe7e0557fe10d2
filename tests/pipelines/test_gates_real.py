"""Training gates, the champion rule and fine-tuning from the registry, with real Ultralytics
training on tiny synthetic data, offline."""

import dataclasses
import random
import shutil
from pathlib import Path

import pytest
import yaml

from siteml.data.dvc_hash import dir_hash, write_dvc_file
from siteml.data.synth import synthesize
from tests.conftest import needs
from tests.pipelines.conftest import MODEL, SITE, SITE_PATH, TinyStore

pytestmark = pytest.mark.slow  # trains
needs("ultralytics", "train")

ONE_EPOCH = {"epochs": 1, "batch": 8, "workers": 0, "warmup_epochs": 0, "close_mosaic": 0}


def at_zone(store: TinyStore, zone: str) -> TinyStore:
    """The same store and data, scenarios for another zone of the same customer."""
    return dataclasses.replace(store, site={**SITE, "zone": zone})


def with_model(store: TinyStore, version: str, model: dict, classes: list[str] | None = None,
               **section) -> tuple[int, dict | None, str]:
    """Run a train scenario whose ``model`` section has ``model`` added (and other classes)."""
    path = store.scenario("train", version, section)
    data = yaml.safe_load(path.read_text())
    data["model"].update(model)
    if classes:
        data["task"]["classes"] = classes
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return store.run_file(path)


def make_champion(store: TinyStore) -> None:
    """The tiny model (never gated) becomes the site's champion, forced."""
    code, _, err = store.invoke("promote", f"{SITE_PATH}/ppe/1", "champion", "--force")
    assert code == 0, err


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory) -> TinyStore:
    """A store with an untrainable dataset: every image carries another image's labels."""
    root = tmp_path_factory.mktemp("shuffled")
    store = TinyStore(root, root / "data", f"sqlite:///{root}/mlflow.db",
                      {**SITE, "zone": "shuffled"}, imgsz=64, images=40)
    synthesize(store.dataset, ["helmet", "vest", "person"], {"train": 32, "val": 8}, imgsz=64,
               seed=2)
    for split in ("train", "val"):
        labels = sorted((store.dataset / "labels" / split).glob("*.txt"))
        texts = [label.read_text() for label in labels]
        random.Random(0).shuffle(texts)
        for label, text in zip(labels, texts, strict=True):
            label.write_text(text)
    write_dvc_file(store.dataset, dir_hash(store.dataset))
    return store


def test_an_untrainable_set_is_refused_by_its_gate(shuffled):
    gate = {"min": {"map50": 0.5}, "min_per_class": {"recall": {"helmet": 0.8}}}
    code, _, err = shuffled.run("train", "v1", **ONE_EPOCH, gate=gate)
    assert code == 1
    assert "refused by its gate, not registered" in err
    assert "map50 is 0.0" in err and "below 0.5" in err
    assert "helmet recall" in err
    [run] = shuffled.runs_named("ppe-yolov11n-train-v1")
    assert run.info.status == "FAILED"
    assert run.data.tags["siteml.gate"] == "refused"
    assert "helmet recall" in run.data.tags["siteml.gate_reasons"]
    assert "val/map50" in run.data.metrics  # the refused model's figures are kept
    weights = [f.path for f in shuffled.client().list_artifacts(run.info.run_id, "weights")]
    assert weights == ["weights/best.pt"]
    assert shuffled.client().search_registered_models() == []


def test_an_untrainable_set_without_a_gate_registers_with_a_loud_warning(shuffled):
    outcome = shuffled.run_ok("train", "v2", **ONE_EPOCH)
    version = shuffled.client().get_model_version(outcome["registered_model"],
                                                  str(outcome["model_version"]))
    assert "do not ship it" in version.tags["siteml.warning"]
    site = f"{SITE['customer']}/ulsan-plant2/shuffled"
    code, out, _ = shuffled.invoke("models", "--site", site)
    assert code == 0 and "WARNING" in out
    ref = f"{site}/ppe/{outcome['model_version']}"
    code, _, err = shuffled.invoke("promote", ref, "champion")
    assert code == 1 and "carries a warning" in err
    code, _, err = shuffled.invoke("promote", ref, "champion", "--force")
    assert code == 0, err


def test_a_challenger_worse_than_the_champion_is_refused_on_the_same_val_split(tiny_store):
    make_champion(tiny_store)
    gate = {"compare_to": "champion", "max_regression": 0.02,
            "min_per_class": {"recall": {"helmet": 0.99}}}
    code, _, err = tiny_store.run("train", "v41", **ONE_EPOCH, gate=gate)
    assert code == 1
    assert "below @champion acme-steel/ulsan-plant2/quant/ppe/1" in err
    assert "helmet recall is" in err
    [run] = tiny_store.runs_named("ppe-yolov11n-train-v41")
    metrics, tags = run.data.metrics, run.data.tags
    assert run.info.status == "FAILED" and tags["siteml.gate"] == "refused"
    assert tags["champion.model_name"] == MODEL and tags["champion.model_version"] == "1"
    assert metrics["champion/map50_95"] > metrics["challenger/map50_95"] + 0.02
    assert metrics["delta/map50_95"] == pytest.approx(
        metrics["challenger/map50_95"] - metrics["champion/map50_95"])
    assert "champion/class/helmet/recall" in metrics and metrics["time/gate_scoring_s"] > 0
    versions = tiny_store.client().search_model_versions(f"name = '{MODEL}'")
    assert [int(v.version) for v in versions] == [1]


def test_a_second_site_fine_tunes_from_the_first_site_champion(tiny_store):
    make_champion(tiny_store)
    second = at_zone(tiny_store, "finetune")
    code, outcome, err = with_model(second, "v1", {"weights_path": f"{SITE_PATH}/ppe@champion"},
                                    **{**ONE_EPOCH, "epochs": 2})
    assert code == 0, err
    client = second.client()
    version = client.get_model_version(outcome["registered_model"], "1")
    assert (version.tags["parent.model_name"], version.tags["parent.model_version"]) == (MODEL,
                                                                                        "1")
    parent_map50 = float(client.get_model_version(MODEL, "1").tags["metrics.val/map50"])
    assert outcome["metrics"]["val/map50"] > parent_map50 / 2  # it did not start from scratch
    code, out, _ = second.invoke("models", "--site", "acme-steel/ulsan-plant2/finetune")
    assert code == 0 and f"from {SITE_PATH}/ppe/1" in out


def test_reset_head_starts_the_class_layers_afresh_for_other_classes(tiny_store):
    make_champion(tiny_store)
    third = at_zone(tiny_store, "renamed")
    model = {"weights_path": f"{SITE_PATH}/ppe@champion"}
    classes = ["hardhat", "vest", "person"]
    code, _, err = with_model(third, "v1", model, classes, **ONE_EPOCH)
    assert code == 2 and "model.reset_head: true" in err
    code, outcome, err = with_model(third, "v2", {**model, "reset_head": True}, classes,
                                    **ONE_EPOCH)
    assert code == 0, err
    assert "start afresh for hardhat, vest, person" in " ".join(err.split())
    run = third.client().get_run(outcome["run_id"])
    assert run.data.tags["siteml.head_reset"] == "6 tensors, from classes [helmet,vest,person]"


def test_a_local_pretrained_file_still_trains_offline(tiny_store, monkeypatch):
    import mlflow.artifacts

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_store.uri)  # where models:/ URIs resolve
    files = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL}/1",
                                                tracking_uri=tiny_store.uri,
                                                dst_path=str(tiny_store.root / "download"))
    [weights] = list(Path(files).rglob("*.pt"))
    shutil.copy(weights, tiny_store.root / "local-yolo.pt")
    code, outcome, err = with_model(at_zone(tiny_store, "local"), "v1",
                                    {"weights_path": "local-yolo.pt"}, **ONE_EPOCH)
    assert code == 0, err
    run = tiny_store.client().get_run(outcome["run_id"])
    assert run.data.params["model.weights_path"] == str(tiny_store.root / "local-yolo.pt")
    assert "parent.model_name" not in run.data.tags
