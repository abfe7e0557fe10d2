"""Batches: several scenarios as one dependency graph, on a real MLflow store, with the
stand-in train and quant pipelines (the real chain runs in the slow tier)."""

import json
from dataclasses import replace

import siteml.pipelines.train
from tests.conftest import line_of
from tests.scenario.test_runner import as_quant, client_for, fake_train, interrupt


def runs_of(uri, site):
    client = client_for(uri)
    experiment = client.get_experiment_by_name(site)
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_a_batch_runs_in_dependency_order_and_once(cli, store_uri, site_scenario, chain,
                                                    pipelines):
    code, out, _ = cli("plan", str(chain), "--json")
    assert code == 0
    plan = json.loads(out)
    assert [(p["file"], p["action"], p["needs"]) for p in plan] == [
        (str(chain / "b-train.yaml"), "run", []), (str(chain / "a-quant.yaml"), "run", [1])]
    code, out, err = cli("run", str(chain), "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["file"], r["status"]) for r in rows] == [
        (str(chain / "b-train.yaml"), "FINISHED"), (str(chain / "a-quant.yaml"), "FINISHED")]
    assert rows[0]["model_version"] == f"{site_scenario.model_name}/1"
    runs = {r.info.run_name: r for r in runs_of(store_uri, site_scenario.site)}
    quant = runs["ppe-yolov11l-quant-v2"]
    assert quant.data.tags["source.model_version"] == "1"
    assert quant.data.tags["source.run_id"] == runs["ppe-yolov11l-train-v2"].info.run_id

    code, out, _ = cli("plan", str(chain), "--json")
    assert [p["action"] for p in json.loads(out)] == ["skipped", "skipped"]
    code, out, err = cli("run", str(chain), "--json")
    assert code == 0, err
    again = json.loads(out)
    assert [r["status"] for r in again] == ["SKIPPED", "SKIPPED"]
    assert [r["run_id"] for r in again] == [r["run_id"] for r in rows]
    assert len(runs_of(store_uri, site_scenario.site)) == 2
    versions = client_for(store_uri).search_model_versions(f"name = '{site_scenario.model_name}'")
    assert len(versions) == 1


def test_a_failure_blocks_its_dependents_not_its_siblings(cli, store_uri, site_scenario, chain,
                                                          pipelines, monkeypatch):
    def train_unless_boom(scenario, tracker):
        if scenario.name == "boom":
            raise ValueError("label file 17.txt is corrupt")
        return fake_train(scenario, tracker)

    monkeypatch.setattr(siteml.pipelines.train, "run", train_unless_boom)
    train = chain / "b-train.yaml"
    train.write_text(train.read_text().replace("name: welding-ppe", "name: boom"))
    sibling = train.read_text().replace("name: boom", "name: other").replace(
        "zone: welding", "zone: painting")
    (chain / "c-sibling.yaml").write_text(sibling)
    code, out, _ = cli("run", str(chain), "--json")
    assert code == 1
    status = {r["file"].rsplit("/", 1)[1]: r for r in json.loads(out)}
    assert status["b-train.yaml"]["status"] == "FAILED"
    assert "label file 17.txt is corrupt" in status["b-train.yaml"]["detail"]
    assert status["a-quant.yaml"]["status"] == "BLOCKED"
    assert "b-train.yaml" in status["a-quant.yaml"]["detail"]
    assert status["c-sibling.yaml"]["status"] == "FINISHED"
    assert [r.info.status for r in runs_of(store_uri, site_scenario.site)] == ["FAILED"]


def test_two_producers_of_one_model_are_invalid_and_nothing_is_written(
        cli, store_uri, site_scenario, chain, pipelines):
    train = chain / "b-train.yaml"
    (chain / "c-train.yaml").write_text(train.read_text().replace("version: v2", "version: v3"))
    code, _, err = cli("run", str(chain))
    assert code == 2
    assert f"{chain / 'c-train.yaml'}:1: name: registers" in err
    assert f"as {train} does" in err
    assert runs_of(store_uri, site_scenario.site) == []


def test_two_scenarios_of_one_run_name_are_invalid(cli, store_uri, site_scenario, chain):
    quant = chain / "a-quant.yaml"
    (chain / "c-quant.yaml").write_text(quant.read_text().replace("name: welding-ppe",
                                                                  "name: other-name"))
    code, _, err = cli("plan", str(chain))
    assert code == 2
    line = line_of(quant.read_text(), "version:")
    assert f"{chain / 'c-quant.yaml'}:{line}: version: names run 'ppe-yolov11l-quant-v2'" in err
    assert runs_of(store_uri, site_scenario.site) == []


def test_a_model_nothing_can_provide_is_located_before_anything_runs(
        cli, store_uri, site_scenario, chain, pipelines):
    quant = chain / "a-quant.yaml"
    missing = f"{site_scenario.customer}/busan-plant1/painting/ppe@champion"
    quant.write_text(as_quant((chain / "b-train.yaml").read_text(), source=missing))
    code, _, err = cli("run", str(chain))
    assert code == 2
    line = line_of(quant.read_text(), "source:")
    assert f"{quant}:{line}: quantization.source: no registered model" in err
    assert runs_of(store_uri, site_scenario.site) == []


def test_scenarios_waiting_for_each_other_are_a_cycle(cli, store_uri, site_scenario, chain):
    train = (chain / "b-train.yaml").read_text()
    customer = site_scenario.customer
    for zone, other in (("welding", "painting"), ("painting", "welding")):
        text = train.replace("zone: welding", f"zone: {zone}").replace(
            "  num_classes: 3\n", f"  num_classes: 3\n  weights_path: "
            f"{customer}/busan-plant1/{other}/ppe@candidate\n")
        (chain / f"train-{zone}.yaml").write_text(text)
    (chain / "b-train.yaml").unlink()
    (chain / "a-quant.yaml").unlink()
    code, _, err = cli("plan", str(chain))
    assert code == 2
    assert "waits in a cycle" in err and "train-painting.yaml" in err
    assert runs_of(store_uri, site_scenario.site) == []


def test_ctrl_c_kills_the_running_run_and_leaves_the_rest_not_run(
        cli, store_uri, site_scenario, chain, pipelines, monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", interrupt)
    code, out, err = cli("run", str(chain), "--json")
    assert code == 130
    rows = {r["file"].rsplit("/", 1)[1]: r["status"] for r in json.loads(out)}
    assert rows == {"b-train.yaml": "KILLED", "a-quant.yaml": "NOT_RUN"}
    assert "batch interrupted; 1 not run" in err
    assert [r.info.status for r in runs_of(store_uri, site_scenario.site)] == ["KILLED"]


def test_more_jobs_than_cores_or_jobs_on_ray_are_invalid_and_write_nothing(
        cli, store_uri, site_scenario, chain):
    from siteml.core.cores import usable_cores

    too_many = str(len(usable_cores()) + 1)
    for args, says in (((too_many,), "--share-cores"), (("2", "--ray"), "on --ray")):
        code, _, err = cli("run", str(chain), "--jobs", *args)
        assert code == 2, err
        assert says in err
    assert runs_of(store_uri, site_scenario.site) == []


def test_a_refusal_names_its_file_once(cli, store_uri, site_scenario, chain, pipelines):
    assert cli("run", str(chain))[0] == 0
    train = chain / "b-train.yaml"
    train.write_text(train.read_text().replace("epochs: 5", "epochs: 2"))  # another run key
    line = line_of(train.read_text(), "version:")
    for args in (("plan", str(chain)), ("run", str(chain)), ("run", str(train))):
        code, _, err = cli(*args)
        assert code == 2, err
        assert err.startswith(f"error: {train}:{line}: version: run 'ppe-yolov11l-train-v2' "
                              "already FINISHED"), err
        assert err.count(str(train)) == 1, err


def test_a_row_names_its_file_once(cli, store_uri, site_scenario, chain, pipelines, monkeypatch):
    def openvino_train(scenario, tracker):  # a source the quantization cannot start from
        result = fake_train(scenario, tracker)
        return replace(result, model=replace(result.model, backend="openvino"))

    monkeypatch.setattr(siteml.pipelines.train, "run", openvino_train)
    code, out, err = cli("run", str(chain), "--json")
    assert code == 1, err
    quant = str(chain / "a-quant.yaml")
    [row] = [row for row in json.loads(out) if row["file"] == quant]
    assert row["detail"].startswith("line ") and "quantization" in row["detail"], row
    assert quant not in row["detail"]
    assert [line.count(quant) for line in err.splitlines() if quant in line] == [1]
