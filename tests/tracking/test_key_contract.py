"""What the pipelines write is what `models`, `runs`, `best` and `compare` read.

The train, quant and infer pipelines are stood in for by functions that build their metrics and
tags with the pipelines' own builders (no model is trained), and go through the real lifecycle
into a real sqlite store; the readers must then find every figure where they look for it.
"""

import json

import pytest

import siteml.pipelines.benchmark
import siteml.pipelines.quantize
import siteml.pipelines.train
from siteml.cli.render import HEADLINE_FORMATS
from siteml.core import keys
from siteml.core.models import PipelineResult, ProducedModel
from siteml.pipelines.detection_map import Scores
from siteml.scenario.types import EXPERIMENT_TYPES

ULTRALYTICS_FINAL = {"metrics/precision(B)": 0.9, "metrics/recall(B)": 0.7,
                     "metrics/mAP50(B)": 0.8, "metrics/mAP50-95(B)": 0.6, "fitness": 0.62}


def train(scenario, tracker):
    weights = tracker.workdir / "best.pt"
    weights.write_bytes(b"weights")
    return PipelineResult(siteml.pipelines.train.final_metrics(ULTRALYTICS_FINAL, epochs_run=3),
                          ProducedModel(weights), keys.HEADLINE[scenario.experiment_type])


def quant(scenario, tracker):
    params = scenario.quantization
    per_class = {0: dict.fromkeys(keys.CLASS_FIGURES, 0.5)}
    metrics = siteml.pipelines.quantize.figures(
        scores={"source": Scores(0.8, 0.6, per_class), "variant": Scores(0.79, 0.58, per_class)},
        sizes={"source": 5.0, "variant": 1.5}, p50_ms={"source": 10.0, "variant": 4.0},
        classes=scenario.task.classes)
    variant = tracker.workdir / "model.xml"
    variant.write_bytes(b"variant")
    return PipelineResult(metrics, ProducedModel(variant, backend=params.backend,
                                                 precision=params.precision,
                                                 variant=params.variant),
                          keys.HEADLINE[scenario.experiment_type])


def infer(scenario, tracker):
    paired = scenario.benchmark.baseline is not None
    latency = 4.0 if paired else 10.0
    metrics = siteml.pipelines.benchmark.batch_figures(
        1, [latency] * 50, latency * 50 / 1000, [10.0] * 50 if paired else None)
    tracker.set_tags(siteml.pipelines.benchmark.run_tags({"executed_precision": "f32"},
                                                         "openvino", "model.xml", steady=True))
    return PipelineResult(metrics)


@pytest.fixture
def chain(cli, site_scenario, sqlite_uri, monkeypatch, tmp_path):
    """train v2 -> quant (openvino int8) -> a benchmark of each, on an embedded store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    for kind, stand_in in (("train", train), ("quant", quant), ("infer", infer)):
        module = EXPERIMENT_TYPES[kind].pipeline
        monkeypatch.setattr(f"{module}.run", stand_in)
    train_text = site_scenario.path.read_text()
    common = train_text[: train_text.index("training:")].replace("experiment_type: train", "")
    files = {
        "train": train_text,
        "quant": common + "experiment_type: quant\nquantization:\n  backend: openvino\n"
                          "  precision: int8\n",
        "infer-base": common.replace("version: v2", "version: v3") + "experiment_type: infer\n"
                      "benchmark:\n  warmup: 1\n",
        "infer-int8": common.replace("version: v2", "version: v4") + "experiment_type: infer\n"
        f"benchmark:\n  source: {site_scenario.site}/ppe__openvino_int8@candidate\n"
        f"  baseline: {site_scenario.site}/ppe@candidate\n",
    }
    for name, text in files.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        code, out, err = cli("run", str(path))
        assert code == 0, (name, err)
        if name == "train":  # people read the slash spelling; MLflow's dotted one is for MLflow
            assert f"registered {site_scenario.site}/ppe/1 @candidate" in out
    return site_scenario


def read(cli, *args):
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_what_the_pipelines_write_is_what_every_reader_reads(cli, chain):
    # models: the headline metrics each pipeline copies onto its registered versions
    entries = {e["variant"]: e for e in read(cli, "models", "--site", chain.site)}
    assert entries[None]["versions"][0]["metrics"] == {"val/map50": "0.8", "val/map50_95": "0.6"}
    variant = entries["openvino_int8"]["versions"][0]["metrics"]
    assert {k: float(v) for k, v in variant.items()} == pytest.approx(
        {"variant/map50_95": 0.58, "delta/map50_95": -0.02, "source/map50_95": 0.6,
         "speedup": 2.5})
    written = {k for headline in keys.HEADLINE.values() for k in headline}
    assert written <= set(HEADLINE_FORMATS), "every headline metric has a format in `models`"

    # runs and best: key metrics and lineage of each run
    rows = {r["run_name"]: r for r in read(cli, "runs", "--site", chain.site)}
    assert rows["ppe-yolov11l-train-v2"]["metrics"] == {"val/map50": 0.8, "val/map50_95": 0.6}
    assert rows["ppe-yolov11l-train-v2"]["model_version"] == f"{chain.model_name}/1"
    assert rows["ppe-yolov11l-quant-v2"]["source_model"] == f"{chain.model_name}/1"
    assert rows["ppe-yolov11l-infer-v4"]["metrics"]["b1/speedup_vs_baseline"] == 2.5
    assert rows["ppe-yolov11l-infer-v3"]["metrics"]["b1/latency_p50_ms"] == 10.0
    found = read(cli, "best", chain.site, "--task", "ppe")
    assert (found["value"], found["model_version"]) == (0.6, f"{chain.model_name}/1")

    # compare: each benchmark with its variant's accuracy and the paired speedup
    rows = {r["variant"]: r for r in read(cli, "compare", chain.site, "--task", "ppe")}
    assert set(rows) == {"base", "openvino_int8"}
    base, int8 = rows["base"], rows["openvino_int8"]
    assert (base["p50_ms"], base["map50_95"], base["steady"]) == (10.0, 0.6, True)
    assert (int8["p50_ms"], int8["speedup"], int8["speedup_paired"]) == (4.0, 2.5, True)
    assert int8["map50_95"] == pytest.approx(0.58)
    assert int8["delta_map50_95"] == pytest.approx(-0.02)
    assert int8["host"] == base["host"] != ""
