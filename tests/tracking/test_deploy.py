"""``siteml deploy``: the desired version of each box as an alias on the variant, its history,
and the bad input that moves nothing; ``siteml fleet`` reading deployment runs; the box agent's
cycles with a stand-in switch (``tests/pipelines/test_fleet.py`` runs the real one)."""

import getpass
import json
import shutil
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

import siteml.pipelines.quantize
import siteml.pipelines.train
from siteml.core import keys
from siteml.core.clock import stamp_at
from tests.conftest import SiteScenario, invoke, make_site_scenario
from tests.scenario.test_runner import as_quant, fake_quant, fake_train

BOXES = ("  - {name: bay-01, layout: ovms, cameras: 4}\n"
         "  - {name: bay-02, layout: triton}\n")


def _site_file(root: Path, site: SiteScenario) -> Path:
    customer, _, zone = site.site.split("/")
    folder = root / "sites"
    folder.mkdir(exist_ok=True)
    (folder / "bays.yaml").write_text(
        f"customer: {customer}\nregion: busan\nplant: plant1\nzone: {zone}\nboxes:\n{BOXES}")
    return folder


@pytest.fixture(scope="module")
def stand_in_variants(empty_store, tmp_path_factory) -> tuple[Path, SiteScenario, Path]:
    """A site with a stand-in training and two stand-in variants of it (OpenVINO, ONNX
    Runtime) in an embedded store, made once: its database, the site, its sites folder."""
    root = tmp_path_factory.mktemp("variants")
    database = root / "store" / "mlflow.db"
    database.parent.mkdir()
    shutil.copyfile(empty_store, database)
    site = make_site_scenario(root)
    quant = root / "quant.yaml"
    quant.write_text(as_quant(site.path.read_text()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
        mp.setattr(siteml.pipelines.train, "run", fake_train)
        mp.setattr(siteml.pipelines.quantize, "run", fake_quant)
        for args in ([str(site.path)], [str(quant)],
                     [str(quant), "--set", "quantization.backend=onnxruntime", "--set",
                      "version=v3"]):
            code, _, err = invoke("run", *args)
            assert code == 0, err
    return database, site, _site_file(root, site)


@pytest.fixture
def deployed(stand_in_variants, tmp_path, monkeypatch) -> tuple[SiteScenario, Path, MlflowClient]:
    database, site, sites = stand_in_variants
    copy = tmp_path / "mlflow.db"
    shutil.copyfile(database, copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{copy}")
    return site, sites, MlflowClient(f"sqlite:///{copy}", f"sqlite:///{copy}")


def test_deploy_sets_a_box_alias_per_box_and_keeps_the_moves(deployed):
    site, sites, client = deployed
    int8 = f"{site.site}/ppe__openvino_int8"
    code, out, err = invoke("deploy", f"{int8}@candidate", "--box", "bay-01", "--box", "bay-02",
                            "--sites-dir", str(sites), "--json")
    assert code == 0, err
    assert json.loads(out) == [
        {"box": box, "model": int8, "version": 1, "previous": None, "taken_from": None}
        for box in ("bay-01", "bay-02")]
    aliases = client.get_registered_model(f"{site.model_name}__openvino_int8").aliases
    assert {a: int(v) for a, v in aliases.items()} == {"candidate": 1, "box-bay-01": 1,
                                                       "box-bay-02": 1}
    # another variant for one box: the alias leaves the first variant
    onnx = f"{site.site}/ppe__onnxruntime_int8"
    code, out, err = invoke("deploy", f"{onnx}/1", "--box", "bay-01", "--sites-dir", str(sites))
    assert code == 0, err
    assert "bay-01" in out and "ppe__openvino_int8" in out
    assert "box-bay-01" not in client.get_registered_model(
        f"{site.model_name}__openvino_int8").aliases
    code, out, _ = invoke("models", "--site", site.site, "--history", "--json")
    moves = [(m["model"].rsplit("/", 1)[1], m["alias"], m["from"], m["to"], m["by"])
             for m in json.loads(out)]
    user = getpass.getuser()
    assert sorted(moves, key=str) == sorted([
        ("ppe__openvino_int8", "box-bay-01", None, 1, user),
        ("ppe__openvino_int8", "box-bay-02", None, 1, user),
        ("ppe__openvino_int8", "box-bay-01", 1, None, user),
        ("ppe__onnxruntime_int8", "box-bay-01", None, 1, user)], key=str)


@pytest.mark.parametrize(("reference", "box", "expected"), [
    ("{site}/ppe__openvino_int8/1", "bay-09", "has no box bay-09 (its boxes: bay-01, bay-02)"),
    ("{site}/ppe/1", "bay-01", "is a pytorch model, which ovms cannot serve"),
    ("{site}/ppe__openvino_int8/7", "bay-01", "has no version 7 (latest: 1)"),
    ("{site}/fire__openvino_int8/1", "bay-01", "no registered model"),
    ("other/busan-plant1/welding/ppe/1", "bay-01", "no site file of other/busan-plant1/welding"),
])
def test_deploy_refuses_bad_input_and_moves_nothing(deployed, reference, box, expected):
    site, sites, client = deployed
    code, _, err = invoke("deploy", reference.format(site=site.site), "--box", box,
                          "--sites-dir", str(sites))
    assert code == 2, err
    assert expected in " ".join(err.split())
    for model in client.search_registered_models():
        assert not [a for a in model.aliases if a.startswith("box-")]


@pytest.mark.parametrize(("boxes", "expected"), [
    ("  - {name: a}\n  - {name: a}\n", "s.yaml:5: boxes: box names must be unique; repeated: a"),
    ("  - {name: a, layout: tensorrt}\n", "s.yaml:6: boxes.0.layout: 'tensorrt' is not valid"),
])
def test_site_boxes_are_checked(tmp_path, boxes, expected):
    folder = tmp_path / "configs" / "sites"
    folder.mkdir(parents=True)
    (folder / "s.yaml").write_text(f"customer: acme\nregion: r\nplant: p\nzone: z\nboxes:\n{boxes}")
    code, _, err = invoke("validate", str(folder / "s.yaml"))
    assert code == 2
    assert expected in " ".join(err.split())


def _serve_run(client, experiment, box, version, status="RUNNING", age_s=0.0, **tags):
    run = client.create_run(experiment, run_name=f"ppe-serve-{box}-v{version}", tags={
        keys.EXPERIMENT_TYPE: keys.SERVE_TYPE, keys.BOX: box, keys.TASK_TYPE: "ppe",
        keys.SERVE_VERSION: str(version), keys.SERVE_INTERVAL_S: "10",
        keys.HEARTBEAT: stamp_at(time.time() - age_s), **tags})
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)


def test_fleet_reads_desired_serving_and_health(deployed):
    site, sites, client = deployed
    int8 = f"{site.model_name}__openvino_int8"
    for box in ("bay-01", "bay-02"):
        code, _, err = invoke("deploy", f"{site.site}/ppe__openvino_int8/1", "--box", box,
                              "--sites-dir", str(sites))
        assert code == 0, err
    client.set_registered_model_alias(site.model_name, "champion", "1")
    experiment = client.get_experiment_by_name(site.site).experiment_id
    source = {keys.SERVE_MODEL: int8, keys.SOURCE_MODEL_VERSION: "0"}  # made from an older one
    _serve_run(client, experiment, "bay-01", 1, **source)
    _serve_run(client, experiment, "bay-01", 2, **source,  # a refusal being recorded: RUNNING
               **{keys.SERVE_REFUSED: "canary: no"})  # until its agent ends it, never served
    _serve_run(client, experiment, "bay-02", 1, age_s=45, **source)
    _serve_run(client, experiment, "bay-03", 1, status="FAILED", **source,
               **{keys.SERVE_REFUSED: "canary: no"})
    code, out, err = invoke("fleet", "--site", site.site, "--json")
    assert code == 0, err
    rows = {row["box"]: row for row in json.loads(out)}
    assert {box: row["health"] for box, row in rows.items()} == {
        "bay-01": "ok", "bay-02": "stale", "bay-03": "not reporting"}
    assert rows["bay-01"]["serving"] == rows["bay-01"]["desired"] == 1
    assert rows["bay-01"]["champion"] == 1 and rows["bay-01"]["lagging"] is True
    code, out, _ = invoke("fleet", "--site", site.site)
    assert code == 0 and "bay-02" in out and "stale" in out


@pytest.mark.parametrize(("rings", "count", "expected"), [
    ("1,25%,100%", 10, [1, 3, 10]), ("1,25%,100%", 2, [1, 2]), ("100%", 1, [1]),
    ("2, 4", 4, [2, 4])])
def test_rings_are_cumulative_box_counts(rings, count, expected):
    from siteml.lifecycle.rollout import parse_rings

    assert parse_rings(rings, count) == expected


@pytest.mark.parametrize(("rings", "expected"), [
    ("1,50%", "ends at 2 of 4 boxes: the last ring must be 100%"),
    ("3,2,100%", "does not add up over 4 boxes"), ("0,100%", "does not add up"),
    ("1,9", "does not add up"), ("1,half", "'half' is neither a box count nor a percentage")])
def test_rings_that_do_not_add_up_are_refused(rings, expected):
    from siteml.core.errors import InvalidInputError
    from siteml.lifecycle.rollout import parse_rings

    with pytest.raises(InvalidInputError, match=expected):
        parse_rings(rings, 4)


def test_rollout_refuses_bad_input_and_moves_nothing(deployed):
    site, sites, client = deployed
    int8 = f"{site.site}/ppe__openvino_int8/1"
    for reference, rings, expected in (
            (int8, "1,50%", "the last ring must be 100%"),
            ("other/busan-plant1/welding/ppe__openvino_int8/1", "100%",
             "is a model of other/busan-plant1/welding, not of the site of"),
            (f"{site.site}/ppe__openvino_int8/4", "100%", "has no version 4")):
        code, _, err = invoke("rollout", reference, "--site", str(sites / "bays.yaml"),
                              "--rings", rings)
        assert code == 2, err
        assert expected in " ".join(err.split())
    assert not client.search_runs([client.get_experiment_by_name(site.site).experiment_id],
                                  "tags.`siteml.experiment_type` = 'rollout'")
    for model in client.search_registered_models():
        assert not [a for a in model.aliases if a.startswith("box-")]


def _stand_in_switch(refuse: set[int]):
    """A switch that serves a version of one model file (and refuses those in ``refuse``)."""
    from siteml.core.digests import file_hashes
    from siteml.core.naming import registry_path
    from siteml.lifecycle.box_agent import Change
    from siteml.lifecycle.repository import MANIFEST, pin_version, repository_name

    def switch(box, name: str, version: int) -> Change:
        if version in refuse:
            return Change(registry_path(name), version, "refused", "canary: stand-in")
        folder = box.repo / repository_name(name) / str(version)
        folder.mkdir(parents=True)
        (folder / "model.xml").write_text("<net/>")
        manifest = {"registered_model": name, "version": version, "lineage": {},
                    "layout": "ovms", "files": file_hashes(folder)}
        (folder / MANIFEST).write_text(json.dumps(manifest))
        pin_version(folder, manifest)
        return Change(registry_path(name), version, "serving", metrics={keys.CANARY_P50: 1.0})
    return switch


def test_the_agent_reports_rescans_refuses_and_unserves_a_replaced_variant(deployed, tmp_path):
    from siteml.lifecycle.box_agent import RESCAN_CYCLES, Agent, Box
    from siteml.lifecycle.repository import repository_name, served_version, verify
    from siteml.tracking.store import resolve_store

    site, sites, client = deployed
    names = {v: f"{site.model_name}__{v}_int8" for v in ("openvino", "onnxruntime")}
    experiment = client.get_experiment_by_name(site.site).experiment_id

    def deploy(variant: str, version: int) -> None:
        code, _, err = invoke("deploy", f"{site.site}/ppe__{variant}_int8/{version}", "--box",
                              "bay-01", "--sites-dir", str(sites))
        assert code == 0, err

    def runs(status: str) -> list:
        return client.search_runs([experiment], f"tags.`{keys.BOX}` = 'bay-01' and "
                                  f"attributes.status = '{status}'")

    repo = tmp_path / "repo"
    agent = Agent(Box("bay-01", site.site, repo, cameras=4, fps=10), resolve_store(),
                  _stand_in_switch(refuse={2}))
    searches = []
    search = agent.client.search_runs
    agent.client.search_runs = lambda *a, **k: searches.append(1) or search(*a, **k)
    deploy("openvino", 1)
    assert [c.status for c in agent.cycle()] == ["serving"]
    [serving] = runs("RUNNING")
    assert serving.data.tags[keys.SERVE_VERSION] == "1"
    assert serving.data.metrics[keys.SERVE_CAMERAS] == 4
    # idle cycles beat the run they know; a run ended from outside is seen at the rescan
    searches.clear()
    client.set_terminated(serving.info.run_id, "KILLED")
    while agent._cycles % RESCAN_CYCLES != RESCAN_CYCLES - 1:
        assert agent.cycle() == []
    assert searches == [] and runs("RUNNING") == []
    assert agent.cycle() == [] and len(searches) == 1
    [again] = runs("RUNNING")
    assert again.data.tags[keys.SERVE_VERSION] == "1"
    # a refused version leaves the old one serving, once
    first = client.get_model_version(names["openvino"], "1")
    client.create_model_version(first.name, first.source, first.run_id, tags=first.tags,
                                model_id=first.model_id)
    deploy("openvino", 2)
    [refused] = agent.cycle()
    assert (refused.status, refused.reason) == ("refused", "canary: stand-in")
    assert agent.cycle() == []
    [failed] = runs("FAILED")
    assert failed.data.tags[keys.SERVE_REFUSED] == "canary: stand-in"
    assert served_version(repo, repository_name(names["openvino"]), "ovms") == 1
    # moved to another variant: it serves, then the replaced one is unserved and its run ends
    deploy("onnxruntime", 1)
    assert [c.status for c in agent.cycle()] == ["serving"]
    assert served_version(repo, repository_name(names["openvino"]), "ovms") is None
    assert verify(repo) == (1, [])
    [running] = runs("RUNNING")
    assert running.data.tags[keys.SERVE_MODEL] == names["onnxruntime"]
    [ended] = [r for r in runs("FINISHED") if r.info.run_id == again.info.run_id]
    assert ended.data.tags[keys.SERVE_REPLACED_BY] == (
        f"{site.site}/ppe__onnxruntime_int8/1")
