"""``extends:``: a scenario built on a base file, with every value still located in the file
that wrote it."""

import json

import pytest

from siteml.core.errors import ScenarioError
from siteml.scenario.factory import load_scenario
from tests.conftest import VALID_SCENARIO, line_of

BASE = VALID_SCENARIO.replace("path: data/welding-ppe", "path: ../data/welding-ppe")


@pytest.fixture
def based(tmp_path):
    """``bases/_welding.yaml`` (the whole scenario) and ``runs/train.yaml`` extending it."""
    (tmp_path / "bases").mkdir()
    (tmp_path / "runs").mkdir()
    base = tmp_path / "bases" / "_welding.yaml"
    base.write_text(BASE)
    return base


def leaf(tmp_path, text: str):
    path = tmp_path / "runs" / "train.yaml"
    path.write_text("extends: ../bases/_welding.yaml\n" + text)
    return path


def test_mappings_merge_lists_and_scalars_replace(tmp_path, based):
    path = leaf(tmp_path, "version: v3\ntraining:\n  epochs: 9\ntask:\n  classes: [a, b, c]\n")
    scenario = load_scenario(path)
    assert scenario.version == "v3"
    assert scenario.training.epochs == 9 and scenario.training.batch == 8
    assert scenario.task.classes == ["a", "b", "c"] and scenario.task.type == "ppe"
    assert scenario.source_files == [path, based.parent / "_welding.yaml"]


def test_null_takes_out_a_section_the_base_set(tmp_path, based):
    path = leaf(tmp_path, "experiment_type: infer\ntraining: null\n"
                "benchmark:\n  source: donghwa-entec/busan-plant1/welding/ppe@champion\n")
    scenario = load_scenario(path)
    assert scenario.experiment_type == "infer" and not hasattr(scenario, "training")
    with pytest.raises(ScenarioError, match="belongs to experiment_type 'train'"):
        load_scenario(leaf(tmp_path, "experiment_type: infer\nbenchmark:\n  source: "
                                     "donghwa-entec/busan-plant1/welding/ppe@champion\n"))


def test_a_base_path_stays_relative_to_the_base(tmp_path, based):
    scenario = load_scenario(leaf(tmp_path, "version: v3\n"))
    assert scenario.dataset.path == tmp_path / "data" / "welding-ppe"


def test_errors_name_the_file_and_line_that_hold_the_value(tmp_path, based):
    based.write_text(BASE.replace("epochs: 5", "epochs: -1"))
    path = leaf(tmp_path, "version: v3\nmodel:\n  input_size: 30\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    located = {(p.file, p.line, p.path) for p in caught.value.problems}
    assert (str(based), line_of(BASE, "epochs:"), "training.epochs") in located
    assert (str(path), 4, "model.input_size") in located


def test_a_chain_is_allowed_and_a_cycle_refused(tmp_path, based):
    middle = tmp_path / "bases" / "_middle.yaml"
    middle.write_text("extends: _welding.yaml\nversion: v7\n")
    path = tmp_path / "runs" / "train.yaml"
    path.write_text("extends: ../bases/_middle.yaml\ntraining:\n  epochs: 2\n")
    scenario = load_scenario(path)
    assert (scenario.version, scenario.training.epochs) == ("v7", 2)
    based.write_text("extends: _middle.yaml\n" + BASE)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    [problem] = caught.value.problems
    assert problem.path == "extends" and "extends back to a file of its own chain" in \
        problem.message


@pytest.mark.parametrize("value, message", [("../bases/_nothing.yaml", "no such file"),
                                            ("[a]", "must be the path of a scenario file")])
def test_a_bad_extends_is_located(tmp_path, based, value, message):
    path = tmp_path / "runs" / "train.yaml"
    path.write_text(f"version: v3\nextends: {value}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (str(path), 2, "extends")
    assert message in problem.message


def test_plan_shows_the_resolved_scenario_and_validate_skips_bases(cli, tmp_path, based):
    path = leaf(tmp_path, "version: v3\n")
    code, out, _ = cli("plan", str(path), "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["scenario"]["training"]["epochs"] == 5 and plan["scenario"]["version"] == "v3"
    assert len(plan["files"]) == 2
    code, out, err = cli("plan", str(path))
    assert code == 0 and "epochs: 5" in out
    (tmp_path / "bases" / "_broken.yaml").write_text("version: [\n")
    code, _, err = cli("validate", str(tmp_path / "bases"), str(tmp_path / "runs"))
    assert code == 0, err
