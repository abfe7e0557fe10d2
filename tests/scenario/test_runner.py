"""The run lifecycle on a real MLflow store (embedded sqlite, and a tracking server)."""

import hashlib
import json
import subprocess

import pytest
import yaml
from mlflow import MlflowClient

import siteml.pipelines.quantize
import siteml.pipelines.train
from siteml.core import keys
from siteml.core.models import PipelineResult, ProducedModel
from siteml.data.dvc_hash import dir_hash
from siteml.pipelines.gates import training_verdict
from tests.conftest import line_of


def fake_train(scenario, tracker):
    """A pipeline defined by the tests: logs per-step metrics and returns a weights file."""
    for epoch in range(3):
        tracker.log_metrics({"train/box_loss": 1 / (epoch + 1), "metrics/mAP50(B)": 0.2 * epoch},
                            step=epoch)
    weights = tracker.workdir / "best.pt"
    weights.write_bytes(b"weights " + scenario.version.encode())
    metrics = {"val/map50_95": 0.61, "val/map50": 0.8, "val/class/helmet/recall": 0.7}
    tags = training_verdict(scenario.gate, metrics, scenario.task.classes, None).enforce(
        tracker, "the trained model") if scenario.gate else {}
    tags[keys.MODEL_CLASSES] = ",".join(scenario.task.classes)
    return PipelineResult(metrics=metrics, model=ProducedModel(weights, tags=tags),
                          headline=("val/map50_95",))


def fake_quant(scenario, tracker):
    """Consumes the source model's files and returns a 'variant' derived from them."""
    source = tracker.source_model()
    weights = (source.path / "best.pt").read_bytes()
    variant = tracker.workdir / "model.xml"
    variant.write_bytes(b"int8 of " + weights)
    q = scenario.quantization
    return PipelineResult(metrics={"val/map50_95": 0.6, "speedup": 2.0},
                          model=ProducedModel(variant, backend=q.backend, precision=q.precision,
                                              variant=q.variant), headline=("val/map50_95",))


def explode(scenario, tracker):
    tracker.log_metrics({"train/box_loss": 1.0}, step=0)
    raise ValueError("label file 17.txt is corrupt")


def interrupt(scenario, tracker):
    raise KeyboardInterrupt


def as_quant(train_text, source=None):
    """A quant scenario text from a train scenario text."""
    text = train_text.replace("experiment_type: train", "experiment_type: quant")
    quant = "quantization:\n  backend: openvino\n  precision: int8\n"
    text = text[: text.index("training:")] + quant
    return text + (f"  source: {source}\n" if source else "")


def client_for(uri):
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def only_run(client, site):
    experiment = client.get_experiment_by_name(site)
    [run] = client.search_runs([experiment.experiment_id])
    return experiment, run


def test_train_run_is_recorded_by_the_convention(cli, store_uri, site_scenario, pipelines):
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    outcome = json.loads(out)
    client = client_for(store_uri)
    experiment, run = only_run(client, site_scenario.site)
    assert experiment.tags["site.customer"] == site_scenario.customer
    assert run.info.run_name == "ppe-yolov11l-train-v2"
    assert run.info.status == "FINISHED"
    assert outcome["run_id"] == run.info.run_id
    tags, params = run.data.tags, run.data.params
    assert tags["site.path"] == site_scenario.site
    assert tags["task.classes"] == "helmet,vest,person"
    assert tags["siteml.version"]
    assert tags["env.python"] and tags["env.cpu_cores"] and tags["env.mlflow"]
    assert params["training.epochs"] == "5"
    assert params["model.architecture"] == "yolov11l"
    history = client.get_metric_history(run.info.run_id, "metrics/mAP50_B")
    assert [(m.step, round(m.value, 3)) for m in history] == [(0, 0.0), (1, 0.2), (2, 0.4)]
    assert run.data.metrics["val/map50_95"] == pytest.approx(0.61)
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == dir_hash(site_scenario.path.parent / "data").md5
    assert str(site_scenario.path.parent / "data") in dataset_input.dataset.source

    scenario_text = client.download_artifacts(run.info.run_id, "scenario.yaml")
    with open(scenario_text) as f:
        text = f.read()
    assert hashlib.sha256(text.encode()).hexdigest() == tags["siteml.scenario_sha256"]
    assert yaml.safe_load(text)["site"]["customer"] == site_scenario.customer

    version = client.get_model_version_by_alias(site_scenario.model_name, "candidate")
    assert (int(version.version), version.run_id) == (1, run.info.run_id)
    assert version.tags["siteml.scenario"] == "welding-ppe:v2"
    assert version.tags["data.dvc_hash"] == dataset_input.dataset.digest
    assert version.tags["model.architecture"] == "yolov11l"
    assert version.tags["model.input_size"] == "640"
    assert version.tags["model.backend"] == "pytorch"
    assert version.tags["metrics.val/map50_95"] == "0.61"
    assert tags["siteml.model_version"] == f"{site_scenario.model_name}/1"


def test_a_retry_after_a_dead_attempt_registers_no_second_version(cli, store_uri, site_scenario,
                                                                   pipelines):
    code, out, _ = cli("run", str(site_scenario.path), "--json")
    assert code == 0
    dead = json.loads(out)["run_id"]
    client = client_for(store_uri)
    client.set_terminated(dead, "KILLED")  # as if its process died after registering
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    retry = json.loads(out)
    assert retry["status"] == "FINISHED" and retry["run_id"] != dead
    assert retry["model_version"] == 1
    versions = client.search_model_versions(f"name = '{site_scenario.model_name}'")
    assert [int(v.version) for v in versions] == [1]
    assert client.get_run(retry["run_id"]).data.tags["siteml.model_version"].endswith("/1")


def test_registered_files_download_through_the_registry(cli, store_uri, site_scenario,
                                                        pipelines, tmp_path):
    assert cli("run", str(site_scenario.path))[0] == 0
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{site_scenario.model_name}@candidate", dst_path=str(tmp_path / "d"),
        tracking_uri=store_uri)
    assert (tmp_path / "d" / "best.pt").read_bytes() == b"weights v2", local


def test_the_same_run_key_is_skipped_a_changed_one_refused_unless_rerun(
        cli, store_uri, site_scenario, pipelines):
    code, out, _ = cli("run", str(site_scenario.path), "--json")
    assert code == 0
    first = json.loads(out)
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["status"] == "SKIPPED" and again["run_id"] == first["run_id"]
    assert again["model_version"] == first["model_version"] == 1
    code, _, err = cli("run", str(site_scenario.path), "--set", "training.epochs=2")
    assert code == 2
    assert "already FINISHED" in err and "bump 'version'" in err
    code, _, err = cli("run", str(site_scenario.path), "--set", "training.epochs=2", "--rerun")
    assert code == 0, err
    client = client_for(store_uri)
    experiment = client.get_experiment_by_name(site_scenario.site)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.data.tags["siteml.attempt"] for r in runs] == ["1", "2"]
    keys = [r.data.tags["siteml.run_key"] for r in runs]
    assert len(set(keys)) == 2 and all(len(k) == 64 for k in keys)
    versions = client.search_model_versions(f"name = '{site_scenario.model_name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert {v.tags["siteml.run_key"] for v in versions} == set(keys)


def test_pipeline_failure_marks_failed_and_registers_nothing(cli, store_uri, site_scenario,
                                                             pipelines, monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", explode)
    code, _, err = cli("run", str(site_scenario.path))
    assert code == 1
    assert "label file 17.txt is corrupt" in err
    client = client_for(store_uri)
    _, run = only_run(client, site_scenario.site)
    assert run.info.status == "FAILED"
    assert "ValueError: label file 17.txt is corrupt" in run.data.tags["siteml.error"]
    with open(client.download_artifacts(run.info.run_id, "error.txt")) as f:
        trace = f.read()
    assert "Traceback" in trace and "in explode" in trace
    assert client.search_registered_models(f"name = '{site_scenario.model_name}'") == []


def test_ctrl_c_marks_killed(cli, store_uri, site_scenario, pipelines, monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", interrupt)
    code, _, err = cli("run", str(site_scenario.path))
    assert code == 130
    assert "marked KILLED" in err
    _, run = only_run(client_for(store_uri), site_scenario.site)
    assert run.info.status == "KILLED"


def test_quant_resolves_source_and_records_lineage(cli, store_uri, site_scenario, pipelines,
                                                    write):
    assert cli("run", str(site_scenario.path))[0] == 0
    assert cli("run", str(site_scenario.path), "--set", "version=v3")[0] == 0
    assert cli("promote", f"{site_scenario.site}/ppe/1", "champion", "--force")[0] == 0
    path = site_scenario.path.with_name("quant.yaml")
    path.write_text(as_quant(site_scenario.path.read_text()))
    code, out, err = cli("run", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["registered_model"] == f"{site_scenario.model_name}__openvino_int8"
    client = client_for(store_uri)
    version = client.get_model_version_by_alias(f"{site_scenario.model_name}__openvino_int8",
                                                "candidate")
    champion = client.get_model_version_by_alias(site_scenario.model_name, "champion")
    assert version.tags["source.model_name"] == site_scenario.model_name
    assert version.tags["source.model_version"] == "1" == str(champion.version)
    assert version.tags["source.run_id"] == champion.run_id
    assert version.tags["model.precision"] == "int8"
    run = client.get_run(version.run_id)
    assert run.info.run_name == "ppe-yolov11l-quant-v2"
    assert run.data.tags["source.model_version"] == "1"
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{version.name}/1",
                                                tracking_uri=store_uri)
    with open(f"{local}/model.xml", "rb") as f:
        assert f.read() == b"int8 of weights v2"


def test_missing_source_model_is_exit_2_and_writes_nothing(cli, store_uri, site_scenario,
                                                           pipelines, monkeypatch):
    site_scenario.path.write_text(as_quant(site_scenario.path.read_text(),
                                           f"{site_scenario.site}/ppe@champion"))
    line = line_of(site_scenario.path.read_text(), "  source:")
    missing = site_scenario.path.parent / "none-yet" / "mlflow.db"
    # located the same way whether the store exists or not yet (then it is not created)
    for uri in (store_uri, f"sqlite:///{missing}"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        code, _, err = cli("run", str(site_scenario.path))
        assert code == 2
        assert err.startswith(f"error: {site_scenario.path}:{line}: quantization.source: "), err
        assert "no registered model" in err and f"{site_scenario.site}/ppe" in err
    assert not missing.exists()
    assert_site_untouched(store_uri, site_scenario)


def assert_site_untouched(store_uri, site_scenario):
    if store_uri.startswith("sqlite:///"):
        database = store_uri.removeprefix("sqlite:///")
        import os

        if not os.path.exists(database):
            return
    client = client_for(store_uri)
    assert client.get_experiment_by_name(site_scenario.site) is None
    assert client.search_registered_models(f"name LIKE '{site_scenario.customer}%'") == []


@pytest.mark.parametrize("change", [
    ("image_count: 3", "image_count: 4"),
    ("path: data", "path: no-such-folder"),
    ("  epochs: 5", "  epochs: 0"),
    ("type: ppe", "type: smoke"),
])
def test_rejected_scenario_leaves_nothing(cli, store_uri, site_scenario, pipelines, change):
    site_scenario.path.write_text(site_scenario.path.read_text().replace(*change))
    code, out, err = cli("run", str(site_scenario.path))
    assert (code, out) == (2, "")
    assert f"{site_scenario.path}:" in err
    assert_site_untouched(store_uri, site_scenario)


def test_dataset_count_error_names_line(cli, store_uri, site_scenario, pipelines):
    text = site_scenario.path.read_text().replace("image_count: 3", "image_count: 4")
    site_scenario.path.write_text(text)
    _, _, err = cli("run", str(site_scenario.path))
    line = text[: text.index("image_count")].count("\n") + 1
    assert f"{site_scenario.path}:{line}: dataset.image_count: is 4 but" in err
    assert "holds 3 images" in err


def test_git_state_is_tagged(cli, store_uri, site_scenario, pipelines):
    folder = site_scenario.path.parent
    for args in (["init", "-q"], ["add", "scenario.yaml"],
                 ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "s"]):
        subprocess.run(["git", *args], cwd=folder, check=True)
    assert cli("run", str(site_scenario.path))[0] == 0
    _, run = only_run(client_for(store_uri), site_scenario.site)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                          text=True).stdout.strip()
    assert run.data.tags["git.commit"] == head
    assert run.data.tags["git.dirty"] == "false"
