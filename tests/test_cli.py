import json
import runpy
import subprocess
import sys

import pytest

from siteml.scenario.json_schema import scenario_json_schema
from tests.conftest import REPO, VALID_SCENARIO, with_site

QUANT = REPO / "experiments/donghwa_entec/welding-ppe-quant-v2.yaml"


def test_validate_folder_recursively(cli, write):
    write(VALID_SCENARIO, "a/one.yaml")
    write(VALID_SCENARIO.replace("version: v2", "version: v3"), "a/b/two.yml")
    code, out, _ = cli("validate", str(write(VALID_SCENARIO, "a/x.yaml").parent))
    assert code == 0
    assert "3 valid, 0 invalid" in out


def test_validate_mixed_exit_2_and_json(cli, write):
    good = write(VALID_SCENARIO, "good.yaml")
    bad = write(VALID_SCENARIO.replace("  epochs: 5", "  epochs: -1"), "bad.yaml")
    code, out, _ = cli("validate", str(good), str(bad), "--json")
    assert code == 2
    report = json.loads(out)
    assert (report["valid"], report["invalid"]) == (1, 1)
    [problem] = next(f for f in report["files"] if f["file"] == str(bad))["problems"]
    assert (problem["line"], problem["path"]) == (25, "training.epochs")


def test_validate_nothing_found_is_an_error(cli, tmp_path):
    code, _, err = cli("validate", str(tmp_path))
    assert code == 2
    assert "no YAML files found" in err


def test_plan_json_has_exactly_the_documented_keys(cli):
    code, out, _ = cli("plan", str(QUANT), "--json")
    assert code == 0
    plan = json.loads(out)
    assert set(plan) == {"experiment_name", "run_name", "registered_model_name", "files",
                         "scenario", "tags", "params"}
    assert plan["files"] == [str(QUANT), str(QUANT.parent / "_welding-ppe.yaml")]
    assert plan["scenario"]["quantization"]["backend"] == "openvino"
    assert plan["experiment_name"] == "donghwa-entec/busan-plant1/welding"
    assert plan["run_name"] == "ppe-yolov11l-quant-v2"
    assert plan["registered_model_name"] == "donghwa-entec.busan-plant1.welding.ppe__openvino_int8"
    assert plan["tags"]["site.zone"] == "welding"
    assert plan["params"]["quantization.backend"] == "openvino"


def test_plan_infer_has_null_registered_model(cli):
    code, out, _ = cli("plan", str(REPO / "experiments/sampyo/conveyor-stuck-infer-v1.yaml"),
                       "--json")
    assert code == 0
    assert json.loads(out)["registered_model_name"] is None


def test_plan_overrides_and_relative_paths(cli, write, tmp_path):
    file = write(VALID_SCENARIO, "exp/s.yaml")
    code, out, _ = cli("plan", str(file), "--set", "training.epochs=9", "--set", "version=v7",
                       "--set", "task.classes=[a, b, c]", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["params"]["training.epochs"] == "9"
    assert plan["run_name"] == "ppe-yolov11l-train-v7"
    assert plan["tags"]["task.classes"] == "a,b,c"
    assert plan["tags"]["data.path"] == str(tmp_path / "exp/data/welding-ppe")


def test_plan_bad_override_names_the_override(cli, write):
    code, out, err = cli("plan", str(write(VALID_SCENARIO)), "--set", "training.epochs=0")
    assert code == 2
    assert "(--set training.epochs=0): training.epochs: input should be greater than" in err
    assert out == ""


def test_plan_site_from_sites_dir_option(cli, write, tmp_path):
    write("customer: acme\nregion: north\nplant: p1\nzone: dock\n", "elsewhere/acme-dock.yaml")
    text = with_site(VALID_SCENARIO, "acme-dock")
    file = write(text)
    code, out, _ = cli("plan", str(file), "--sites-dir", str(tmp_path / "elsewhere"), "--json")
    assert code == 0, out
    assert json.loads(out)["experiment_name"] == "acme/north-p1/dock"


def test_plan_human_output(cli):
    code, out, _ = cli("plan", str(QUANT))
    assert code == 0
    assert "ppe-yolov11l-quant-v2" in out
    assert "quantization.calibration_size" in out


def test_committed_json_schema_is_current(cli):
    code, out, _ = cli("schema")
    assert code == 0
    assert json.loads(out) == scenario_json_schema()
    committed = json.loads((REPO / "schema/scenario.schema.json").read_text())
    assert committed == scenario_json_schema(), "run: siteml schema -o schema/scenario.schema.json"
    assert committed["$defs"]["TrainingScenario"]["properties"]["site"]["anyOf"][1]["type"] == (
        "string")


def test_validate_and_plan_do_not_import_heavy_packages():
    code = (
        "import sys\n"
        "from siteml.cli import app\n"
        f"for args in (['validate', {str(REPO / 'experiments')!r}], ['plan', {str(QUANT)!r}]):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "heavy = [m for m in ('mlflow', 'torch', 'ultralytics', 'openvino', 'nncf', 'onnxruntime')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_version_and_module_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["siteml", "--version"])  # as `python -m siteml --version`
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("siteml", run_name="__main__", alter_sys=True)
    assert exited.value.code in (0, None)
    assert capsys.readouterr().out.startswith("siteml ")


def test_demo_refuses_an_input_size_yolo_cannot_take(cli, tmp_path):
    code, _, err = cli("demo", str(tmp_path / "demo"), "--imgsz", "100")
    assert code == 2 and "--imgsz 100" in err
    assert not (tmp_path / "demo").exists()


def test_demo_refuses_a_folder_that_holds_something_else(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = cli("demo", str(tmp_path), "--epochs", "1")
    assert code == 2 and "not empty" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
