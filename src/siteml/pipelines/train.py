"""Training pipeline: an Ultralytics YOLO detector trained offline from a training scenario.

One MLflow run: Ultralytics' own MLflow callback is off; per-epoch metrics are logged through
the tracker under clean names as each epoch ends; the best weights come back as the model to
register. Ultralytics writes only under the run's scratch folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from siteml.backends import ultralytics
from siteml.backends.registry import SOURCE_BACKEND, get
from siteml.core import keys
from siteml.core.models import PipelineResult, ProducedModel, Tracker
from siteml.core.progress import note, progress_bar
from siteml.data.layout import DatasetError, check_detection_dataset, training_view
from siteml.pipelines.checks import Problem, runtime_ready
from siteml.scenario.schema import TrainingScenario

METRIC_NAMES = {
    "metrics/precision(B)": keys.VAL_PRECISION,
    "metrics/recall(B)": keys.VAL_RECALL,
    "metrics/mAP50(B)": keys.VAL_MAP50,
    "metrics/mAP50-95(B)": keys.VAL_MAP50_95,
}
ARTIFACT_SUFFIXES = (".csv", ".png", ".jpg", ".yaml", ".log")


def check(scenario: TrainingScenario) -> Problem:
    """PyTorch and Ultralytics are installed, and the device is there."""
    return runtime_ready(scenario, SOURCE_BACKEND)


def check_models(scenario: TrainingScenario, saved_for: Mapping[str, str | None]) -> Problem:
    """Training reads no registered model."""
    return None


def ultralytics_device(device: str) -> str:
    """``cpu`` -> ``cpu``, ``cuda`` -> ``0``, ``cuda:1`` -> ``1``."""
    if device == "cuda":
        return "0"
    return device.removeprefix("cuda:")


def clean_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """Ultralytics' metric names -> siteml's (``metrics/mAP50-95(B)`` -> ``val/map50_95``)."""
    return {METRIC_NAMES.get(k, k): float(v) for k, v in raw.items() if k != "fitness"}


def final_metrics(raw: dict[str, Any], epochs_run: int) -> dict[str, float]:
    """What a training run ends with: the final validation (Ultralytics' names or siteml's)
    and the number of epochs run."""
    return {**clean_metrics(raw), keys.EPOCHS_RUN: float(epochs_run)}


PER_CLASS_COLUMNS = {"precision": "Box-P", "recall": "Box-R", "map50": "mAP50",
                     "map50_95": "mAP50-95"}
"""siteml's per-class figure -> the column of Ultralytics' ``DetMetrics.summary()``."""


def per_class_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """``val/class/<name>/<figure>`` from the rows of ``DetMetrics.summary()`` (one per class
    present in val; a class absent from val has no row, so no figure rather than a 0)."""
    return {keys.class_metric(str(row["Class"]), figure): float(row[column])
            for row in rows for figure, column in PER_CLASS_COLUMNS.items()}


def per_class_table(rows: list[dict[str, Any]]) -> str:
    """The per-class table as CSV: class, images, instances and the figures."""
    lines = [",".join(["class", "images", "instances", *PER_CLASS_COLUMNS])]
    lines += [",".join([str(row["Class"]), str(row["Images"]), str(row["Instances"]),
                        *(f"{float(row[c]):.5f}" for c in PER_CLASS_COLUMNS.values())])
              for row in rows]
    return "\n".join(lines) + "\n"


def learned_nothing(metrics: dict[str, float]) -> str | None:
    """The warning for a model whose final val mAP50 is 0, else None."""
    if metrics.get(keys.VAL_MAP50, 1.0) > 0:
        return None
    return ("val mAP50 is 0: the model found nothing on the validation split (too few epochs, "
            "wrong labels, or classes that do not match the data); it is registered, but do not "
            "ship it")


def run(scenario: TrainingScenario, tracker: Tracker) -> PipelineResult:
    """Train, log every epoch, and return the final metrics and the best weights."""
    dataset = scenario.dataset.path
    try:
        counts = check_detection_dataset(dataset, len(scenario.task.classes))
    except DatasetError as exc:
        raise DatasetError(f"dataset {scenario.dataset.version}: {exc}") from None
    tracker.set_tags({f"data.images_{split}": str(n) for split, n in counts.items()})
    data_yaml = training_view(dataset, scenario.task.classes, tracker.workdir / "dataset")
    framework = ultralytics.offline_ultralytics(tracker.workdir)
    weights = scenario.model.weights_path
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
            metrics[keys.EPOCH_TIME] = float(trainer.epoch_time or 0.0)
            tracker.log_metrics(metrics, step=trainer.epoch + 1)
            advance(f"mAP50 {metrics.get(keys.VAL_MAP50, 0):.3f}  "
                    f"mAP50-95 {metrics.get(keys.VAL_MAP50_95, 0):.3f}")
            stopped = bool(trainer.stop)

        trainer = ultralytics.train(
            str(weights) if weights else f"{scenario.model.ultralytics_name}.yaml",
            {"on_fit_epoch_end": on_fit_epoch_end},
            all_cores=scenario.environment.device == "cpu",
            data=str(data_yaml), imgsz=scenario.model.input_size,
            device=ultralytics_device(scenario.environment.device),
            seed=scenario.environment.seed, pretrained=weights is not None,
            project=str(tracker.workdir / "runs"), name="train", exist_ok=True,
            plots=True, verbose=False, val=True, **scenario.training.model_dump())
    run_dir = Path(trainer.save_dir)
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and path.suffix in ARTIFACT_SUFFIXES:
            tracker.log_artifact(path, "ultralytics")
    tracker.log_artifact(tracker.workdir / "ultralytics.log", "ultralytics")
    best = trainer.best if Path(trainer.best).exists() else trainer.last
    produced = ProducedModel(Path(best), format=get(SOURCE_BACKEND).model_format,
                             backend=SOURCE_BACKEND, precision="fp32",
                             tags={"ultralytics.version": framework.__version__,
                                   keys.MODEL_CLASSES: ",".join(scenario.task.classes)})
    metrics = final_metrics(final or trainer.metrics, trainer.epoch + 1)
    validated = getattr(trainer.validator, "metrics", None)
    if validated is not None:
        rows = validated.summary()
        metrics.update(per_class_metrics(rows))
        table = tracker.workdir / keys.PER_CLASS_ARTIFACT
        table.write_text(per_class_table(rows), encoding="utf-8")
        tracker.log_artifact(table)
    warning = learned_nothing(metrics)
    if warning:
        note(f"[bold red]warning:[/bold red] {warning}")
        tracker.set_tags({keys.WARNING: warning})
    return PipelineResult(metrics=metrics, model=produced,
                          headline=keys.HEADLINE[scenario.experiment_type])


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
