"""Every MLflow key siteml writes or reads: tags, params prefixes and metric names.

Writers (the lifecycle, the pipelines) and readers (``models``, ``runs``, ``best``,
``compare``) use these names, never string literals of their own, so that a renamed key
cannot leave a reader looking for the old one. Pure: imports nothing.
"""

from __future__ import annotations

import re

# --- Run tags: bookkeeping --------------------------------------------------------------------
EXPERIMENT_TYPE = "siteml.experiment_type"
SCENARIO = "siteml.scenario"
SCENARIO_VERSION = "siteml.scenario_version"
SCENARIO_SHA256 = "siteml.scenario_sha256"
REGISTERED_MODEL = "siteml.registered_model"
MODEL_VERSION = "siteml.model_version"
"""``name/version`` a run registered."""
VARIANT = "siteml.variant"
SITEML_VERSION = "siteml.version"
ATTEMPT = "siteml.attempt"
RUN_KEY = "siteml.run_key"
"""A hash of the resolved scenario and the model versions it reads: the same key FINISHED
once is not run again, and never registers a second version."""
HEARTBEAT = "siteml.heartbeat"
"""When the run's process last said it is alive (UTC, ISO 8601), every ``SITEML_HEARTBEAT_S``."""
PID = "siteml.pid"
RAY_NODE, RAY_JOB, RAY_TASK = "ray.node_id", "ray.job_id", "ray.task_id"
"""Where a run of a Ray batch ran (``siteml run --ray``)."""
REAPED = "siteml.reaped"
"""Why a RUNNING run whose process was gone was marked KILLED."""
CORES = "siteml.cores"
"""The cores a run of a parallel local batch was pinned to (``siteml run --jobs N``)."""
DATA_CHECK = "siteml.data_check"
ERROR = "siteml.error"
GATE = "siteml.gate"
GATE_PASSED, GATE_REFUSED = "passed", "refused"
RUN_ID = "siteml.run_id"
"""On a registered version: the run that produced it."""
FORMAT = "siteml.format"

# --- Run tags: where and what (prefixes of the scenario's sections) ----------------------------
SITE_PREFIX, TASK_PREFIX, DATA_PREFIX, MODEL_PREFIX = "site.", "task.", "data.", "model."
ENV_PREFIX, GIT_PREFIX, SITEML_PREFIX, MLFLOW_PREFIX = "env.", "git.", "siteml.", "mlflow."
QUANT_PREFIX, BENCHMARK_PREFIX, TOOLKIT_PREFIX = "quant.", "benchmark.", "toolkit."
MINE_PREFIX = "mine."
SITE_PATH = "site.path"
TASK_TYPE = "task.type"
DATA_DVC_HASH = "data.dvc_hash"
DATA_VERSION = "data.version"
DATA_VAL_NEAR_DUPLICATES = "data.val_near_duplicates"
"""Val images with a near-duplicate in train (pHash), on runs that profile their dataset."""
DATASET_PROFILE_ARTIFACT = "dataset_profile.json"
DATA_PARENT_VERSION, DATA_PARENT_HASH = "data.parent_version", "data.parent_dvc_hash"
DATA_MINE_RUN, DATA_LABEL_PROJECT = "data.mine_run", "data.label_project"
"""On a run whose dataset was grown (``siteml data grow``): its parent version, the mine run
whose frames it added and the labelling project they were labelled in (as run tags and as tags
of the run's dataset input)."""
ENV_HOSTNAME = "env.hostname"
ENV_CPU = "env.cpu"
ENV_CPU_FLAGS = "env.cpu_flags"
DEVICE_PARAM = "environment.device"
"""A run param (the scenario's ``environment.device``)."""

# --- Run tags: MLflow's own --------------------------------------------------------------------
NOTE = "mlflow.note.content"
USER = "mlflow.user"
SOURCE_TYPE = "mlflow.source.type"
SOURCE_NAME = "mlflow.source.name"
GIT_COMMIT = "mlflow.source.git.commit"
EXPERIMENT_KIND = "mlflow.experimentKind"
"""The kind of work an experiment holds, as MLflow's UI knows it."""
EXPERIMENT_KIND_MODELS = "custom_model_development"

# --- Models a run reads (``source``, ``baseline``) ---------------------------------------------
MODEL_ROLES = ("source", "baseline", "parent", "champion")
ROLE_FIELDS = ("model_name", "model_version", "model_path", "run_id")


def role_tag(role: str, field: str) -> str:
    """``{role}.{field}``: e.g. ``source.model_name`` of the model a quant or infer run read."""
    if role not in MODEL_ROLES or field not in (*ROLE_FIELDS, "model_ref", "model_folder"):
        raise KeyError(f"no tag {role}.{field}")
    return f"{role}.{field}"


SOURCE_MODEL_NAME = role_tag("source", "model_name")
SOURCE_MODEL_VERSION = role_tag("source", "model_version")
BASELINE_MODEL_NAME = role_tag("baseline", "model_name")

# --- Registered version tags -------------------------------------------------------------------
MODEL_BACKEND = "model.backend"
MODEL_FORMAT = "model.format"
MODEL_PRECISION = "model.precision"
MODEL_ARCHITECTURE = "model.architecture"
MODEL_INPUT_SIZE = "model.input_size"
MODEL_CLASSES = "model.classes"
MODEL_FILES = "model.files"
"""The sha256 of each file registered with the version (JSON), checked on every download."""
METRIC_TAG_PREFIX = "metrics."
"""A version's headline metrics, copied as ``metrics.<name>`` tags so readers skip the runs."""

# --- Benchmark and quantization tags ----------------------------------------------------------
BENCHMARK_BACKEND = "benchmark.backend"
BENCHMARK_MODEL_FILE = "benchmark.model_file"
BENCHMARK_STEADY = "benchmark.steady"
QUANT_EXECUTED_PRECISION = "quant.executed_precision"
QUANT_METHOD = "quant.method"
"""The recipe that made the variant: ``ptq``, ``accuracy_control`` (INT8) or ``convert``."""
QUANT_RECIPES_TRIED = "quant.recipes_tried"
"""Every INT8 recipe tried, in turn, the last one the one that made the variant."""

# --- Metrics -----------------------------------------------------------------------------------
VAL_PRECISION, VAL_RECALL = "val/precision", "val/recall"
VAL_MAP50, VAL_MAP50_95 = "val/map50", "val/map50_95"
EPOCHS_RUN, EPOCH_TIME = "train/epochs_run", "time/epoch_s"
CLASS_FIGURES = ("precision", "recall", "map50", "map50_95")
PER_CLASS_ARTIFACT = "per_class.csv"
WARNING = "siteml.warning"
"""A run or version whose result should not be trusted as is (e.g. val mAP50 of 0)."""
WORST_CLASS = "siteml.worst_class"
"""The class with the lowest AP50 on val, and that AP50 (``helmet 0.412``)."""


def class_metric(class_name: str, figure: str, prefix: str = "val") -> str:
    """``val/class/helmet/recall``: one of ``CLASS_FIGURES`` for one class."""
    return f"{prefix}/class/{class_name}/{figure}"


def worst_class(metrics: dict[str, float], prefix: str = "val",
                figure: str = "map50") -> str | None:
    """``helmet 0.412``: the class with the lowest ``figure`` among ``{prefix}/class/*`` (the
    ``WORST_CLASS`` tag), or None when no class was scored."""
    start, end = f"{prefix}/class/", f"/{figure}"
    scored = sorted((value, name[len(start):-len(end)]) for name, value in metrics.items()
                    if name.startswith(start) and name.endswith(end))
    return f"{scored[0][1]} {scored[0][0]:.3f}" if scored else None


def scored(label: str, name: str) -> str:
    """A figure of a model scored by siteml's evaluator, or the difference of two:
    ``source/map50``, ``variant/size_mb``, ``champion/map50_95``, ``delta/map50``."""
    return f"{label}/{name}"


SOURCE_MAP50, SOURCE_MAP50_95 = scored("source", "map50"), scored("source", "map50_95")
VARIANT_MAP50, VARIANT_MAP50_95 = scored("variant", "map50"), scored("variant", "map50_95")
DELTA_MAP50, DELTA_MAP50_95 = scored("delta", "map50"), scored("delta", "map50_95")
DELTA_MAP50_95_SE = scored("delta", "map50_95_se")
"""The standard error of ``delta/map50_95`` on the val split (bootstrap over its images)."""
SPEEDUP = "speedup"
RECIPE_SPEED_COST = "recipe/speed_cost"
"""The first recipe's speedup over the one of the recipe that made the variant (what meeting
the accuracy budget cost in speed; logged when a fallback recipe made it)."""
ACCURACY = "accuracy"
"""Label of a benchmark's ``measure_accuracy`` figures."""
ACCURACY_MAP50, ACCURACY_MAP50_95 = scored(ACCURACY, "map50"), scored(ACCURACY, "map50_95")
MODEL_SIZE_MB = "model/size_mb"
CHALLENGER, CHAMPION = "challenger", "champion"
"""Labels of a training gate's champion rule: both scored on the challenger's val split."""
GATE_SCORING_S = "time/gate_scoring_s"
GATE_RULES = "siteml.gate_rules"
"""The rules a gate checked (on the run and on the registered version)."""
GATE_REASONS = "siteml.gate_reasons"
"""Why a gate refused the model."""
GATE_FORCED = "siteml.gate_forced"
"""On a version promoted past its gate with ``--force``: who, when, and what was wrong."""
HEAD_RESET = "siteml.head_reset"
"""On a run fine-tuned from a parent of other classes: what ``model.reset_head`` re-initialised."""
PROMOTION_PREFIX = "siteml.promotion."
"""Registered-model tags ``siteml.promotion.<ms>.<alias>`` (before: ``.<ms>``): one per alias
move (JSON)."""


def quant_latency(label: str) -> str:
    """Batch-1 p50 of the quant run's speed check: ``latency/source_p50_ms``."""
    return f"latency/{label}_p50_ms"


def latency_percentile(q: int) -> str:
    """A latency percentile's name: ``latency_p95_ms``."""
    return f"latency_p{q}_ms"


LATENCY_P50, LATENCY_P95 = latency_percentile(50), latency_percentile(95)
FPS = "fps"
LOAD_MS, FIRST_INFERENCE_MS = "load_ms", "first_inference_ms"
LATENCY_DRIFT = "latency_drift"
BASELINE_P50 = "baseline_latency_p50_ms"
SPEEDUP_VS_BASELINE = "speedup_vs_baseline"
_BATCH_METRIC = re.compile(r"b([1-9][0-9]*)/(.+)")
STREAMS_MAX_CAMERAS = "streams/max_cameras"
"""Camera streams the box serves at ``streams/target_fps`` (each within its latency limit)."""
STREAMS_CAPPED = "streams/capped"
"""1 where the search stopped at its limit (``benchmark.streams``) because every count up to it
passed: the box serves at least ``streams/max_cameras``; else 0."""
STREAMS_TARGET_FPS, STREAMS_MAX_LATENCY = "streams/target_fps", "streams/max_latency_ms"
STREAMS_TOTAL_FPS, STREAMS_CAPACITY_FPS = "streams/total_fps", "streams/capacity_fps"
STREAMS_P50, STREAMS_P95 = "streams/p50_ms", "streams/p95_ms"
"""At ``streams/max_cameras``: the median frame latency, and the worst stream's p95."""


def batch_metric(batch: int, name: str) -> str:
    """A benchmark figure at batch size ``batch``: ``b4/latency_p50_ms``."""
    return f"b{batch}/{name}"


def batch_sizes(metrics: dict[str, float], name: str = LATENCY_P50) -> list[int]:
    """The batch sizes a benchmark logged ``name`` for, smallest first."""
    found = (_BATCH_METRIC.fullmatch(key) for key in metrics)
    return sorted(int(m[1]) for m in found if m and m[2] == name)


HEADLINE = {
    "train": (VAL_MAP50, VAL_MAP50_95),
    "quant": (VARIANT_MAP50_95, DELTA_MAP50_95, SOURCE_MAP50_95, SPEEDUP),
}
"""Metrics copied onto a registered version as ``metrics.*`` tags, by experiment type."""
KEY_METRICS = (VAL_MAP50, VAL_MAP50_95, VARIANT_MAP50_95, DELTA_MAP50_95, SPEEDUP,
               batch_metric(1, LATENCY_P50), batch_metric(1, FPS),
               batch_metric(1, SPEEDUP_VS_BASELINE))
"""What ``siteml runs`` shows of each run."""

# --- The fleet: desired state, what a box serves, and the canary check -----------------------
BOX_ALIAS_PREFIX = "box-"
"""A registered variant's alias ``box-<name>``: the version box ``<name>`` should serve."""


def box_alias(box: str) -> str:
    """The alias naming the version box ``box`` should serve."""
    return f"{BOX_ALIAS_PREFIX}{box}"


SERVE_TYPE = "serve"
"""``siteml.experiment_type`` of a deployment run: one box serving one version, RUNNING while
it serves, FINISHED when replaced, FAILED when the box refused the version."""
BOX = "siteml.box"
SERVE_MODEL = "siteml.serve.model"
SERVE_VERSION = "siteml.serve.version"
SERVE_INTERVAL_S = "siteml.serve.interval_s"
"""The agent's cycle: its run is stale after three missed intervals."""
SERVE_REFUSED = "siteml.serve.refused"
"""Why the box refused the version (files, canary, speed, load)."""
SERVE_REPLACED_BY = "siteml.serve.replaced_by"
SERVE_CAMERAS, SERVE_FPS = "serve/cameras", "serve/fps"
"""What the box serves, reported with each heartbeat."""
CANARY_MATCHED = "canary/matched"
"""Share of the registered canary detections the box's runtime found again (1: all)."""
CANARY_MAX_SHIFT = "canary/max_shift"
"""The largest ``1 - IoU`` between a registered canary box and the box's own."""
CANARY_MAX_CONF_DELTA = "canary/max_conf_delta"
CANARY_P50 = "canary/p50_ms"
"""The box's batch-1 latency on the canary images."""
CANARY_SLOWDOWN = "canary/slowdown"
"""That latency over the one of the version the box served before, timed in turns with it."""
MINE_SELECTION_SHA256 = "siteml.mine.selection_sha256"
"""On a mine run: the sha256 of its selection manifest (the same frames, models and settings
give the same)."""
MINE_FRAMES, MINE_SELECTED = "mine/frames", "mine/selected"
MINE_NEAR_DUPLICATES = "mine/near_duplicates"
MINE_FRAMES_PER_S = "mine/frames_per_s"
"""Frames scored per second, both models run."""


def mine_mean(score: str) -> str:
    """The mean of one of mining's scores over the frames: ``mine/mean_novelty``."""
    return f"mine/mean_{score}"


LABEL_TOOL, LABEL_URL, LABEL_PROJECT = ("siteml.label.tool", "siteml.label.url",
                                      "siteml.label.project")
"""On a mine run pushed to a labelling tool: which, where, and its project's id."""
LABEL_LABELLED, LABEL_BOXES = "label/labelled", "label/boxes"
"""Frames labelled, and their boxes, when the annotations were pulled."""


def label_corrected(name: str) -> str:
    """The share of a class's boxes the labellers changed (moved, deleted, added) against the
    model's pre-annotations: ``label/corrected/<class>``."""
    return f"label/corrected/{name}"


ROLLOUT_TARGET = "siteml.rollout.target"
"""On a rollout run (``siteml.experiment_type = rollout``): the ``name/version`` it rolls out."""
ROLLOUT_RINGS, ROLLOUT_MAX_FAILED = "siteml.rollout.rings", "siteml.rollout.max_failed"
ROLLOUT_STATE = "siteml.rollout.state"
"""The boxes moved so far with the version each had before (JSON): what a resumed rollout
continues from and a rollback puts back."""
ROLLOUT_REASON = "siteml.rollout.reason"
