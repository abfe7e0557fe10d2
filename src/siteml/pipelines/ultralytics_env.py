"""Importing Ultralytics so that it never reaches for the network or the user's folders.

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from siteml.extras import require

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
