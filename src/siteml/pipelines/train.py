"""Training pipeline: an Ultralytics YOLO detector trained offline from a training scenario.

One MLflow run: Ultralytics' own MLflow callback is off; per-epoch metrics are logged through
the tracker under clean names as each epoch ends; the best weights come back as the model to
register, unless the scenario's gate refuses them. Training starts from scratch, from a ``.pt``
file, or from a registered model of the customer (its parent). Ultralytics writes only under the
run's scratch folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from siteml.backends import registry as backends
from siteml.backends import ultralytics
from siteml.backends.base import LoadOptions
from siteml.backends.registry import SOURCE_BACKEND, get
from siteml.core import keys
from siteml.core.models import PipelineResult, ProducedModel, Tracker
from siteml.core.naming import registry_path
from siteml.core.progress import note, progress_bar
from siteml.data.layout import DatasetError, check_detection_dataset, training_view
from siteml.pipelines.checks import Problem, runtime_ready
from siteml.pipelines.detection_map import deltas, score, val_split
from siteml.pipelines.gates import training_verdict
from siteml.pipelines.weights import pt_weights
from siteml.scenario.schema import TrainingScenario

METRIC_NAMES = {
    "metrics/precision(B)": keys.VAL_PRECISION,
    "metrics/recall(B)": keys.VAL_RECALL,
    "metrics/mAP50(B)": keys.VAL_MAP50,
    "metrics/mAP50-95(B)": keys.VAL_MAP50_95,
}
ARTIFACT_SUFFIXES = (".csv", ".png", ".jpg", ".yaml", ".log")


def check(scenario: TrainingScenario) -> Problem:
    """Starting weights named by a file are there; PyTorch and Ultralytics are installed, and
    the device is there."""
    weights = scenario.model.weights_path
    if isinstance(weights, Path) and not weights.is_file():
        return ("model.weights_path", f"no file {weights}")
    return runtime_ready(scenario, SOURCE_BACKEND)


def check_models(scenario: TrainingScenario, read: Mapping[str, Mapping[str, str]]) -> Problem:
    """A parent model detects the scenario's classes (or ``model.reset_head`` allows others);
    a champion to compare with detects them too (it is scored on this val split)."""
    classes = ",".join(scenario.task.classes)
    parent, champion = read.get("parent"), read.get("champion")
    if parent is not None and parent.get(keys.MODEL_CLASSES) != classes \
            and not scenario.model.reset_head:
        return ("model.weights_path", f"{scenario.model.parent.path} detects "
                f"[{parent.get(keys.MODEL_CLASSES)}], not this task's [{classes}]; set "
                "model.reset_head: true to start its head afresh for these classes")
    if champion is not None and champion.get(keys.MODEL_CLASSES) != classes:
        return ("training.gate.compare_to", f"the @champion detects "
                f"[{champion.get(keys.MODEL_CLASSES)}], not this task's [{classes}], so it "
                "cannot be scored on this val split; drop compare_to or promote a champion "
                "of these classes")
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


LEARNED_NOTHING = 0.01
"""A val mAP50 below this (1 %) means the model found nothing worth the name."""


def learned_nothing(metrics: dict[str, float]) -> str | None:
    """The warning for a model whose final val mAP50 is (nearly) 0, else None."""
    found = metrics.get(keys.VAL_MAP50, 1.0)
    if found >= LEARNED_NOTHING:
        return None
    return (f"val mAP50 is {found:.3f}: the model found (almost) nothing on the validation split "
            "(too few epochs, wrong labels, or classes that do not match the data); do not "
            "ship it")


def _checked_view(scenario: TrainingScenario, tracker: Tracker) -> Path:
    """The dataset's labels and splits checked (its counts tagged), and the ``data.yaml`` of a
    view of links to it, so that Ultralytics' label caches never change the hashed folder."""
    dataset = scenario.dataset.path
    try:
        counts = check_detection_dataset(dataset, len(scenario.task.classes))
    except DatasetError as exc:
        raise DatasetError(f"dataset {scenario.dataset.version}: {exc}") from None
    tracker.set_tags({f"data.images_{split}": str(n) for split, n in counts.items()})
    return training_view(dataset, scenario.task.classes, tracker.workdir / "dataset")


def _final_figures(trainer: Any, final: dict[str, float], tracker: Tracker) -> dict[str, float]:
    """Ultralytics' plots and log as artifacts; the final validation (``final``, else the last
    epoch's) with its per-class figures and table."""
    for path in sorted(Path(trainer.save_dir).iterdir()):
        if path.is_file() and path.suffix in ARTIFACT_SUFFIXES:
            tracker.log_artifact(path, "ultralytics")
    tracker.log_artifact(tracker.workdir / "ultralytics.log", "ultralytics")
    metrics = final_metrics(final or trainer.metrics, trainer.epoch + 1)
    validated = getattr(trainer.validator, "metrics", None)
    if validated is not None:
        rows = validated.summary()
        metrics.update(per_class_metrics(rows))
        table = tracker.workdir / keys.PER_CLASS_ARTIFACT
        table.write_text(per_class_table(rows), encoding="utf-8")
        tracker.log_artifact(table)
    return metrics


def run(scenario: TrainingScenario, tracker: Tracker) -> PipelineResult:
    """Train, log every epoch, and return the final metrics and the best weights."""
    data_yaml = _checked_view(scenario, tracker)
    framework = ultralytics.offline_ultralytics(tracker.workdir)
    weights = _starting_weights(scenario, tracker)
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
            str(weights or f"{scenario.model.ultralytics_name}.yaml"),
            {"on_fit_epoch_end": on_fit_epoch_end},
            all_cores=scenario.environment.device == "cpu",
            data=str(data_yaml), imgsz=scenario.model.input_size,
            device=ultralytics_device(scenario.environment.device),
            seed=scenario.environment.seed, pretrained=weights is not None,
            project=str(tracker.workdir / "runs"), name="train", exist_ok=True,
            plots=True, verbose=False, val=True, **scenario.training.ultralytics_arguments())
    best = Path(trainer.best if Path(trainer.best).exists() else trainer.last)
    metrics = _final_figures(trainer, final, tracker)
    tags = {"ultralytics.version": framework.__version__, **warnings_of(metrics)}
    tracker.set_tags({k: v for k, v in tags.items() if k.startswith(keys.SITEML_PREFIX)})
    if keys.WARNING in tags:
        note(f"[bold red]warning:[/bold red] {tags[keys.WARNING]}")
    if scenario.gate:
        tags.update(_gate(scenario, tracker, best, metrics))
    produced = ProducedModel(best, format=get(SOURCE_BACKEND).model_format,
                             backend=SOURCE_BACKEND, precision="fp32", tags=tags)
    return PipelineResult(metrics=metrics, model=produced,
                          headline=keys.HEADLINE[scenario.experiment_type])


def warnings_of(metrics: dict[str, float]) -> dict[str, str]:
    """The worst class (lowest AP50 on val) and the learned-nothing warning, as tags."""
    tags = {}
    worst = keys.worst_class(metrics)
    if worst:
        tags[keys.WORST_CLASS] = worst
    warning = learned_nothing(metrics)
    if warning:
        tags[keys.WARNING] = warning
    return tags


def _starting_weights(scenario: TrainingScenario, tracker: Tracker) -> Path | None:
    """The ``.pt`` to start from: the parent model's (fetched from the registry), the
    scenario's file, or None (from scratch)."""
    if scenario.model.parent is None:
        return scenario.model.weights_path  # type: ignore[return-value]
    parent = tracker.source_model("parent")
    weights = pt_weights(parent.path, tracker.workdir / "parent")
    previous = parent.tags.get(keys.MODEL_CLASSES, "")
    if previous == ",".join(scenario.task.classes):
        return weights
    reset = ultralytics.reset_class_head(weights, weights.with_name("reset-head.pt"))
    tracker.set_tags({keys.HEAD_RESET: f"{reset} tensors, from classes [{previous}]"})
    note(f"model.reset_head: the parent detects {previous.replace(',', ', ')}; its head's "
         f"class layers ({reset} tensors) start afresh for {', '.join(scenario.task.classes)}, "
         "every other layer is kept")
    return weights.with_name("reset-head.pt")


def _gate(scenario: TrainingScenario, tracker: Tracker, best: Path,
          metrics: dict[str, float]) -> dict[str, str]:
    """Check the gate (scoring the champion beside the new model when it compares with one);
    a refused model's figures and weights are kept on the run before it fails."""
    gate = scenario.gate
    assert gate is not None
    champion = None
    if gate.compare_to and tracker.reads(keys.CHAMPION):
        found = tracker.source_model(keys.CHAMPION)
        champion = f"{registry_path(found.name)}/{found.version}"
        metrics.update(challenge(scenario, best,
                                 pt_weights(found.path, tracker.workdir / keys.CHAMPION)))
    elif gate.compare_to:
        note(f"gate: {registry_path(scenario.get_registered_model_name())} has no "
             f"@{gate.compare_to}: nothing to compare with; the absolute rules still apply")
    verdict = training_verdict(gate, metrics, scenario.task.classes, champion)
    if verdict.reasons:
        tracker.log_metrics(metrics)
        tracker.log_artifact(best, "weights")
    return verdict.enforce(tracker, "the trained model")


def challenge(scenario: TrainingScenario, challenger: Path, champion: Path) -> dict[str, float]:
    """The new model and the champion scored by the same evaluator on the same val split
    (this scenario's): ``challenger/*``, ``champion/*``, ``delta/*`` and the time it took."""
    started = time.perf_counter()
    frames, truths = val_split(scenario.dataset.path, scenario.model.input_size)
    options = LoadOptions(precision=backends.EXECUTION_PRECISION["fp32"],
                          device=backends.device_or_cpu(SOURCE_BACKEND,
                                                        scenario.environment.device))
    scores = {}
    for label, path in ((keys.CHALLENGER, challenger), (keys.CHAMPION, champion)):
        model = backends.load(path, frames[0], options, SOURCE_BACKEND)
        scores[label] = score(model.predict, frames, truths, f"scoring the {label} on val")
    classes = scenario.task.classes
    return {**scores[keys.CHALLENGER].metrics(keys.CHALLENGER, classes),
            **scores[keys.CHAMPION].metrics(keys.CHAMPION, classes),
            **deltas(scores[keys.CHAMPION], scores[keys.CHALLENGER], classes),
            keys.GATE_SCORING_S: time.perf_counter() - started}


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
