"""Training pipeline: an Ultralytics YOLO detector trained offline from a training scenario.

One MLflow run: Ultralytics' own MLflow callback is off; per-epoch metrics are logged through
the tracker under clean names as each epoch ends; the best weights come back as the model to
register. Ultralytics writes only under the run's scratch folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from siteml.data.layout import DatasetError, check_detection_dataset, training_view
from siteml.pipelines.base import PipelineResult, ProducedModel, Tracker
from siteml.pipelines.ultralytics_env import offline_ultralytics
from siteml.progress import progress_bar
from siteml.scenario.schema import TrainingScenario

METRIC_NAMES = {
    "metrics/precision(B)": "val/precision",
    "metrics/recall(B)": "val/recall",
    "metrics/mAP50(B)": "val/map50",
    "metrics/mAP50-95(B)": "val/map50_95",
}
HEADLINE = ("val/map50", "val/map50_95")
ARTIFACT_SUFFIXES = (".csv", ".png", ".jpg", ".yaml", ".log")


def ultralytics_device(device: str) -> str:
    """``cpu`` -> ``cpu``, ``cuda`` -> ``0``, ``cuda:1`` -> ``1``."""
    if device == "cuda":
        return "0"
    return device.removeprefix("cuda:")


def clean_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """Ultralytics' metric names -> siteml's (``metrics/mAP50-95(B)`` -> ``val/map50_95``)."""
    return {METRIC_NAMES.get(k, k): float(v) for k, v in raw.items() if k != "fitness"}


def run(scenario: TrainingScenario, tracker: Tracker) -> PipelineResult:
    """Train, log every epoch, and return the final metrics and the best weights."""
    dataset = scenario.dataset.path
    try:
        counts = check_detection_dataset(dataset, len(scenario.task.classes))
    except DatasetError as exc:
        raise DatasetError(f"dataset {scenario.dataset.version}: {exc}") from None
    tracker.set_tags({f"data.images_{split}": str(n) for split, n in counts.items()})
    data_yaml = training_view(dataset, scenario.task.classes, tracker.workdir / "dataset")
    ultralytics = offline_ultralytics(tracker.workdir)
    from ultralytics import YOLO

    weights = scenario.model.weights_path
    model = YOLO(str(weights) if weights else f"{scenario.model.ultralytics_name}.yaml")
    epochs = scenario.training.epochs
    final: dict[str, float] = {}
    with progress_bar(f"training {scenario.get_run_name()}", epochs) as advance, \
            _ultralytics_log(tracker.workdir / "ultralytics.log"):
        stopped = False

        def on_fit_epoch_end(trainer: Any) -> None:
            nonlocal stopped
            metrics = clean_metrics({**trainer.label_loss_items(trainer.tloss, prefix="train"),
                                     **trainer.metrics, **trainer.lr})
            if stopped:  # Ultralytics' final validation of best.pt
                final.update({k: v for k, v in metrics.items() if k.startswith("val/")})
                return
            metrics["time/epoch_s"] = float(trainer.epoch_time or 0.0)
            tracker.log_metrics(metrics, step=trainer.epoch + 1)
            advance(f"mAP50 {metrics.get('val/map50', 0):.3f}  "
                    f"mAP50-95 {metrics.get('val/map50_95', 0):.3f}")
            stopped = bool(trainer.stop)

        model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
        if scenario.environment.device == "cpu":
            model.add_callback("on_pretrain_routine_start", _use_all_cores)
        model.train(
            data=str(data_yaml), imgsz=scenario.model.input_size,
            device=ultralytics_device(scenario.environment.device),
            seed=scenario.environment.seed, pretrained=weights is not None,
            project=str(tracker.workdir / "runs"), name="train", exist_ok=True,
            plots=True, verbose=False, val=True, **scenario.training.model_dump())
    trainer = model.trainer
    run_dir = Path(trainer.save_dir)
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and path.suffix in ARTIFACT_SUFFIXES:
            tracker.log_artifact(path, "ultralytics")
    tracker.log_artifact(tracker.workdir / "ultralytics.log", "ultralytics")
    best = trainer.best if Path(trainer.best).exists() else trainer.last
    produced = ProducedModel(Path(best), format="ultralytics", backend="pytorch", precision="fp32",
                             tags={"ultralytics.version": ultralytics.__version__,
                                   "model.classes": ",".join(scenario.task.classes)})
    metrics = final or clean_metrics(trainer.metrics)
    metrics["train/epochs_run"] = float(trainer.epoch + 1)
    return PipelineResult(metrics=metrics, model=produced, headline=HEADLINE)


def _use_all_cores(trainer: Any) -> None:
    """Ultralytics computes on ``cores - 1`` threads; on a small CPU box that halves the speed
    (measured on 2 cores, yolo11n at 320 px: 21 s per epoch on 1 thread, 12.5 s on 2 threads with
    2 loader workers), so compute on every core."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)


@contextmanager
def _ultralytics_log(path: Path) -> Iterator[None]:
    """Send Ultralytics' own log to a file (an artifact); keep only its warnings on screen."""
    logger = logging.getLogger("ultralytics")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    saved = logger.level, [(h, h.level) for h in logger.handlers]
    for other in logger.handlers:
        other.setLevel(max(other.level, logging.WARNING))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        for other, level in saved[1]:
            other.setLevel(level)
