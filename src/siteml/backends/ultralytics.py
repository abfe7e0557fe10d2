"""Ultralytics, the detector framework every pipeline and backend goes through: training,
export, letterbox preprocessing, NMS and AP. The only module (with the backends) that imports it
or torch.

Imported so that it never reaches for the network or the user's folders:

- ``YOLO_OFFLINE=1`` skips its online probes, AutoUpdate and analytics; ``YOLO_AUTOINSTALL=False``
  stops it pip-installing export helpers; ``YOLO_VERBOSE=False`` leaves the terminal to siteml's
  progress bar (the full log goes to the run's ``ultralytics.log`` artifact).
- ``YOLO_CONFIG_DIR`` is a siteml-owned folder for this process, so its settings file, font and
  run folders never land in the user's home or working directory.
- The settings switch off every integration (its MLflow callback would open a second run and
  change the active experiment), settings sync and hub.
- Its dataset check fetches ``Arial.ttf`` on every run unless the font is in the config folder:
  matplotlib's DejaVu Sans is placed there under that name.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from siteml.core.cores import usable_cores
from siteml.core.extras import require

OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "YOLO_VERBOSE": "False"}
INTEGRATIONS_OFF = {"sync": False, "hub": False, "mlflow": False, "clearml": False, "comet": False,
                    "dvc": False, "raytune": False, "tensorboard": False, "wandb": False,
                    "neptune": False, "vscode_msg": False, "openvino_msg": False}
FONTS = ("Arial.ttf", "Arial.Unicode.ttf")


def _config_dir() -> Path:
    if env := os.environ.get("SITEML_YOLO_CONFIG_DIR"):
        return Path(env)
    folder = Path(tempfile.mkdtemp(prefix="siteml-ultralytics-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["SITEML_YOLO_CONFIG_DIR"] = str(folder)
    return folder


def offline_ultralytics(workdir: Path) -> ModuleType:
    """Import (once) and configure Ultralytics for an offline run writing under ``workdir``."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_CONFIG_DIR"] = str(_config_dir())
    ultralytics = require("ultralytics", "train")
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    _place_fonts(Path(USER_CONFIG_DIR))
    SETTINGS.update({**{k: v for k, v in INTEGRATIONS_OFF.items() if k in SETTINGS},
                     "datasets_dir": str(workdir / "datasets"),
                     "weights_dir": str(workdir / "weights"),
                     "runs_dir": str(workdir / "runs")})
    return ultralytics


def export(weights: Path, **arguments: Any) -> Path:
    """Ultralytics' export of ``weights`` (written beside them) with the tracer's noise off."""
    from ultralytics import YOLO

    with quiet_export():
        return Path(YOLO(str(weights)).export(verbose=False, **arguments))


def train(model: str, callbacks: dict[str, Callable[[Any], None]], all_cores: bool,
          **arguments: Any) -> Any:
    """Train ``model`` (a ``.pt`` or an architecture's ``.yaml``) with ``arguments`` for
    ``YOLO.train``; return the trainer. ``all_cores``: compute on every core (see
    ``use_all_cores``)."""
    from ultralytics import YOLO

    detector = YOLO(model)
    for event, callback in callbacks.items():
        detector.add_callback(event, callback)
    if all_cores:
        detector.add_callback("on_pretrain_routine_start", use_all_cores)
    detector.train(**arguments)
    return detector.trainer


def use_all_cores(_trainer: Any = None) -> None:
    """Ultralytics computes on ``cores - 1`` threads; on a small CPU box that halves the speed
    (measured on 2 cores, yolo11n at 320 px: 21 s per epoch on 1 thread, 12.5 s on 2 threads with
    2 loader workers), so compute on every core this process may use."""
    import torch

    torch.set_num_threads(len(usable_cores()))


def reset_class_head(weights: Path, target: Path) -> int:
    """Write ``weights`` to ``target`` with the detection head's class layers (the last
    convolution of each class branch) re-initialised as a new model's are; return how many
    tensors were reset. Ultralytics would drop those layers itself when the class count changes;
    this also starts them afresh when it does not (the same count of other classes)."""
    import torch

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    model = checkpoint.get("ema") or checkpoint["model"]
    head = model.model[-1]
    branches = [*head.cv3, *(getattr(head, "one2one_cv3", None) or ())]
    with torch.no_grad():
        for branch in branches:
            branch[-1].reset_parameters()
        head.bias_init()
    checkpoint.update({"model": model, "ema": None})
    torch.save(checkpoint, target)
    return sum(len(list(branch[-1].parameters())) for branch in branches)


def letterbox(image: Path, size: int) -> Any:
    """Letterboxed, RGB, 0-1 float32 NCHW batch of one: what Ultralytics' exports expect."""
    import cv2
    import numpy as np
    from ultralytics.data.augment import LetterBox

    frame = cv2.imread(str(image))
    if frame is None:
        raise ValueError(f"cannot read image {image}")
    frame = LetterBox((size, size), auto=False)(image=frame)
    return np.ascontiguousarray(frame[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255


def nms(output: Any, conf: float = 0.25, iou: float = 0.7, **options: Any) -> Any:
    """Ultralytics' NMS of one raw ``(1, 4 + nc, anchors)`` output: ``(n, 6)`` rows
    ``x1, y1, x2, y2, score, class`` as a numpy array."""
    import numpy as np
    import torch
    from ultralytics.utils.nms import non_max_suppression

    [detections] = non_max_suppression(torch.as_tensor(np.asarray(output)), conf_thres=conf,
                                       iou_thres=iou, **options)
    return detections.numpy()


def box_iou(truths: Any, boxes: Any) -> Any:
    """IoU of every ``x1, y1, x2, y2`` truth box with every predicted box (numpy in and out)."""
    import torch
    from ultralytics.utils.metrics import box_iou as iou

    return iou(torch.as_tensor(truths), torch.as_tensor(boxes)).numpy()


def average_precision(correct: Any, scores: Any, predicted: Any,
                      targets: Any) -> tuple[Any, Any, Any, Any]:
    """Ultralytics' ``ap_per_class``: for each class present in ``targets``, precision and
    recall (at the confidence of the best mean F1), AP per IoU threshold, and the class ids."""
    from ultralytics.utils.metrics import ap_per_class

    _, _, precision, recall, _, ap, classes, *_ = ap_per_class(correct, scores, predicted,
                                                               targets)
    return precision, recall, ap, classes


@contextmanager
def quiet_export() -> Iterator[None]:
    """Silence the warnings torch's tracer prints during an Ultralytics export (its deprecation
    of ``torch.jit.trace`` and shape-as-constant notes): they are about Ultralytics, not the
    user's model, and would bury siteml's own output."""
    import torch.jit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def _place_fonts(config_dir: Path) -> None:
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in FONTS:
        target = config_dir / name
        if not target.exists():
            shutil.copyfile(source, target)
