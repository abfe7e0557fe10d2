"""What a training scenario reads from the registry, checked before anything is written: a
parent to fine-tune from, and a champion to compare with (the pipeline is a stand-in)."""

import json

from mlflow import MlflowClient

from tests.conftest import line_of


def client_for(uri):
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def other_zone(site_scenario, zone: str, extra: str = "", classes: str = "helmet, vest, person"):
    """The site's scenario moved to another zone of the same customer, with ``extra`` under
    ``model:``, and other classes if asked."""
    text = (site_scenario.path.read_text().replace("zone: welding", f"zone: {zone}")
            .replace("classes: [helmet, vest, person]", f"classes: [{classes}]")
            .replace("num_classes: 3", f"num_classes: {len(classes.split(','))}{extra}"))
    path = site_scenario.path.with_name(f"{zone}.yaml")
    path.write_text(text)
    return path, f"{site_scenario.customer}/busan-plant1/{zone}"


def test_fine_tuning_from_a_registered_model_records_the_parent(cli, store_uri, site_scenario,
                                                                pipelines):
    assert cli("run", str(site_scenario.path))[0] == 0
    parent = f"{site_scenario.site}/ppe@candidate"
    path, site = other_zone(site_scenario, "assembly", f"\n  weights_path: {parent}")
    code, out, err = cli("run", str(path), "--json")
    assert code == 0, err
    version = client_for(store_uri).get_model_version(json.loads(out)["registered_model"], "1")
    assert version.tags["parent.model_name"] == site_scenario.model_name
    assert version.tags["parent.model_version"] == "1"
    code, out, _ = cli("models", "--site", site, "--json")
    assert json.loads(out)[0]["versions"][0]["parent"] == f"{site_scenario.site}/ppe/1"


def test_a_parent_of_other_classes_needs_reset_head(cli, store_uri, site_scenario,
                                                    pipelines):
    assert cli("run", str(site_scenario.path))[0] == 0
    ref = f"\n  weights_path: {site_scenario.site}/ppe@candidate"
    path, site = other_zone(site_scenario, "assembly", ref, classes="helmet, harness")
    code, _, err = cli("run", str(path))
    assert code == 2
    line = line_of(path.read_text(), "weights_path")
    assert f"{path}:{line}: model.weights_path: " in err
    assert "detects [helmet,vest,person], not this task's [helmet,harness]" in err
    assert "model.reset_head: true" in err
    assert client_for(store_uri).get_experiment_by_name(site) is None
    code, _, err = cli("run", str(path), "--set", "model.reset_head=true")
    assert code == 0, err


def test_a_missing_parent_is_exit_2_located(cli, store_uri, site_scenario, pipelines):
    assert cli("run", str(site_scenario.path))[0] == 0
    for ref in ("{site}/ppe@champion", "{site}/ppe/7", "{site}/fire@candidate"):
        extra = "\n  weights_path: " + ref.format(site=site_scenario.site)
        path, site = other_zone(site_scenario, "assembly", extra)
        code, _, err = cli("run", str(path))
        assert code == 2, ref
        assert f"{path}:{line_of(path.read_text(), 'weights_path')}: model.weights_path: " in err
        assert client_for(store_uri).get_experiment_by_name(site) is None


def test_compare_to_champion_without_one_runs_on_absolute_rules(cli, store_uri, site_scenario,
                                                                 pipelines):
    code, _, err = cli("run", str(site_scenario.path), "--set", "training.gate.compare_to=champion")
    assert code == 0, err
    [run] = client_for(store_uri).search_runs(
        [client_for(store_uri).get_experiment_by_name(site_scenario.site).experiment_id])
    assert "champion.model_name" not in run.data.tags
    assert run.data.params["gate.compare_to"] == "champion"


def test_a_champion_of_other_classes_cannot_be_compared(cli, store_uri, site_scenario,
                                                        pipelines):
    assert cli("run", str(site_scenario.path))[0] == 0
    assert cli("promote", f"{site_scenario.site}/ppe/1", "champion", "--force")[0] == 0
    text = (site_scenario.path.read_text().replace("version: v2", "version: v3")
            .replace("classes: [helmet, vest, person]", "classes: [helmet, vest]")
            .replace("num_classes: 3", "num_classes: 2")
            + "  gate:\n    compare_to: champion\n")
    site_scenario.path.write_text(text)
    code, _, err = cli("run", str(site_scenario.path))
    assert code == 2
    assert f"{line_of(text, 'compare_to')}: training.gate.compare_to: the @champion detects " \
        "[helmet,vest,person]" in err


def test_site_file_gates_apply_under_the_scenario_own(cli, store_uri, site_scenario, tmp_path,
                                                      pipelines):
    sites = tmp_path / "configs" / "sites"
    sites.mkdir(parents=True)
    (sites / "welding.yaml").write_text(
        f"customer: {site_scenario.customer}\nregion: busan\nplant: plant1\nzone: welding\n"
        "gates:\n  ppe:\n    min: {map50: 0.9, map50_95: 0.5}\n  fire:\n    min: {map50: 0.1}\n")
    text = site_scenario.path.read_text()
    text = text[: text.index("site:")] + "site: welding\n" + text[text.index("task:"):]
    site_scenario.path.write_text(text)
    code, _, err = cli("run", str(site_scenario.path))
    assert code == 1
    assert "map50 is 0.8000, below 0.9" in err
    code, _, err = cli("run", str(site_scenario.path), "--rerun",
                       "--set", "training.gate={min: {map50: 0.7}}")
    assert code == 0, err
    [run] = client_for(store_uri).search_runs(
        [client_for(store_uri).get_experiment_by_name(site_scenario.site).experiment_id],
        "attributes.status = 'FINISHED'")
    assert run.data.params["gate.min.map50"] == "0.7"
    assert run.data.params["gate.min.map50_95"] == "0.5"
    assert "site.gates" not in run.data.tags
