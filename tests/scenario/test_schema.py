import subprocess
import sys

import pytest
from pydantic import ValidationError

from siteml.scenario.schema import (
    InferenceBenchmarkScenario,
    QuantizationScenario,
    SiteConfig,
    TrainingScenario,
)

SITE = {"customer": "donghwa-entec", "region": "busan", "plant": "plant1", "zone": "welding"}
COMMON = {
    "name": "welding-ppe", "version": "v2", "site": SITE,
    "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
    "model": {"architecture": "yolov11l", "input_size": 640, "num_classes": 3},
    "dataset": {"version": "v3", "dvc_hash": "0" * 32 + ".dir", "path": "d", "image_count": 10},
}


def build(cls, **changes):
    return cls.model_validate({**COMMON, **changes}, context={"base_dir": "/data/root"})


def test_design_note_worked_example_names():
    train = build(TrainingScenario, experiment_type="train", training={})
    assert SiteConfig(**SITE).get_experiment_name() == "donghwa-entec/busan-plant1/welding"
    assert train.get_experiment_name() == "donghwa-entec/busan-plant1/welding"
    assert train.get_run_name() == "ppe-yolov11l-train-v2"
    assert train.get_registered_model_name() == "donghwa-entec.busan-plant1.welding.ppe"
    quant = build(QuantizationScenario, experiment_type="quant",
                  quantization={"backend": "openvino", "precision": "int8"})
    assert quant.get_registered_model_name() == (
        "donghwa-entec.busan-plant1.welding.ppe__openvino_int8")
    assert quant.get_run_name() == "ppe-yolov11l-quant-v2"
    assert quant.get_output_model_name() == quant.get_registered_model_name()


def test_tags_and_params():
    scenario = build(TrainingScenario, experiment_type="train", training={"epochs": 3},
                     tags={"owner": "kim"})
    tags = scenario.to_all_tags()
    assert {k: tags[k] for k in ("site.customer", "site.region", "site.plant", "site.zone",
                                 "site.path")} == {
        **{f"site.{k}": v for k, v in SITE.items()}, "site.path": scenario.get_experiment_name()}
    assert tags["task.type"] == "ppe"
    assert tags["task.classes"] == "helmet,vest,person"
    assert tags["task.num_classes"] == "3"
    assert tags["data.dvc_hash"] == "0" * 32 + ".dir"
    assert tags["data.path"] == "/data/root/d"
    assert tags["data.image_count"] == "10"
    assert tags["owner"] == "kim"
    params = scenario.to_all_params()
    assert params["model.architecture"] == "yolov11l"
    assert params["model.input_size"] == "640"
    assert params["environment.device"] == "cpu"
    assert params["training.epochs"] == "3"
    assert all(isinstance(v, str) for v in {**tags, **params}.values())
    assert scenario.model.ultralytics_name == "yolo11l"


def test_infer_registers_nothing_and_tags_source():
    scenario = build(InferenceBenchmarkScenario, experiment_type="infer", benchmark={
        "source": "donghwa-entec/busan-plant1/welding/ppe__openvino_int8@candidate",
        "batch_sizes": [1, 4]})
    assert scenario.get_output_model_name() is None
    assert scenario.benchmark.iterations == 200
    assert scenario.to_all_tags()["source.model_ref"] == (
        "models:/donghwa-entec.busan-plant1.welding.ppe__openvino_int8@candidate")
    assert scenario.to_all_params()["benchmark.batch_sizes"] == "1,4"


def test_a_benchmark_source_may_be_an_export_folder(tmp_path):
    folder = tmp_path / "models" / "ppe"
    folder.mkdir(parents=True)
    scenario = InferenceBenchmarkScenario.model_validate(
        {**COMMON, "experiment_type": "infer", "benchmark": {"source": "./models/ppe"}},
        context={"base_dir": str(tmp_path)})
    assert scenario.model_folder("source") == folder
    assert scenario.model_reference("source") is None
    assert scenario.to_all_tags()["source.model_ref"] == str(folder)
    assert "benchmark.target_fps" not in scenario.to_all_params()
    with pytest.raises(ValidationError, match="is not a folder"):
        build(InferenceBenchmarkScenario, experiment_type="infer",
              benchmark={"source": "/no/such/export"})


def test_streams_default_to_one_frame_interval():
    params = build(InferenceBenchmarkScenario, experiment_type="infer",
                   benchmark={"streams": "auto", "target_fps": 25}).benchmark
    assert params.latency_limit_ms == 40
    assert params.to_params()["benchmark.streams"] == "auto"
    for wrong in (0, 257, "many"):
        with pytest.raises(ValidationError, match="streams"):
            build(InferenceBenchmarkScenario, experiment_type="infer",
                  benchmark={"streams": wrong})


@pytest.mark.parametrize(
    ("cls", "changes", "fragment"),
    [
        (TrainingScenario, {"model": {**COMMON["model"], "num_classes": 2}},
         "task.classes names 3"),
        (TrainingScenario, {"tags": {"site.zone": "x"}}, "reserved prefix"),
        (QuantizationScenario, {"quantization": {"backend": "onnxruntime", "precision": "fp16"}},
         "onnxruntime supports fp32 and int8"),
        (QuantizationScenario, {"quantization": {"backend": "openvino", "precision": "fp16",
                                                 "method": "accuracy_control"}},
         "accuracy_control needs"),
        (InferenceBenchmarkScenario, {"benchmark": {"iterations": 5, "duration_s": 2}},
         "not both"),
        (InferenceBenchmarkScenario, {"benchmark": {"baseline": "ab/b-c/d/ppe@candidate",
                                                    "hint": "throughput"}},
         "a baseline is timed in alternating turns"),
        (InferenceBenchmarkScenario, {"benchmark": {"baseline": "ab/b-c/d/ppe@candidate",
                                                    "duration_s": 5}},
         "use iterations (not duration_s)"),
        (InferenceBenchmarkScenario, {"benchmark": {"backend": "openvino"},
                                      "environment": {"device": "cuda"}},
         "openvino does not run on 'cuda': use CPU, GPU"),
        (InferenceBenchmarkScenario, {"benchmark": {"backend": "onnxruntime"},
                                      "environment": {"device": "NPU"}},
         "onnxruntime does not run on 'NPU': use cpu or cuda"),
    ],
)
def test_cross_field_rules(cls, changes, fragment):
    data = {"experiment_type": cls.model_fields["experiment_type"].annotation.__args__[0],
            cls.params_key: {"backend": "openvino", "precision": "int8"}
            if cls is QuantizationScenario else {}, **changes}
    with pytest.raises(ValidationError) as info:
        build(cls, **data)
    assert fragment in str(info.value)


def test_schema_module_is_pure():
    code = ("import sys, siteml.scenario.schema, siteml.core.naming; "
            "bad = [m for m in ('mlflow', 'torch', 'ultralytics', 'openvino', 'yaml') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
