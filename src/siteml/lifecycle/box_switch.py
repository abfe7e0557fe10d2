"""One switch of an edge box to a version: export it beside what serves, check it on the box's
own runtime against the detections registered for its canary images, and pin the server's
config to it. The box agent runs this in a child process (``siteml box switch``), so that
the agent itself never holds MLflow's client or a runtime between switches.

Switches of one repository take turns (a lock file): an agent killed mid-switch leaves its
child to finish, and the next agent's switch waits for it, then finds the work done.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from siteml.backends.base import LoadOptions
from siteml.backends.registry import EXECUTION_PRECISION, find_model, load
from siteml.core.errors import InvalidInputError
from siteml.core.models import CANARY_DIR
from siteml.core.naming import registry_path
from siteml.lifecycle.box_agent import Box, Change
from siteml.lifecycle.export import export_version
from siteml.lifecycle.repository import (
    MANIFEST,
    ExportFolderError,
    exported_version,
    partial_folder,
    pin_version,
    repository_name,
    served_version,
    version_problems,
)
from siteml.pipelines.canary import CanaryCheck, CanaryError, Tolerance, check_canary
from siteml.pipelines.images import timing_frame

SWITCH_LOCK = ".siteml-switch.lock"


@contextmanager
def switch_lock(repo: Path) -> Iterator[None]:
    """Hold the repository's switch lock (waiting for another switch to end)."""
    repo.mkdir(parents=True, exist_ok=True)
    with (repo / SWITCH_LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def switch(box: Box, name: str, version: int) -> Change:
    """Serve ``name``/``version`` on ``box`` unless it fails its checks (a refusal leaves the
    version that serves now).

    Raises:
        TrackingUnavailableError, MlflowException: the registry did not answer (nothing
            switched; the agent tries again next cycle).
    """
    path = registry_path(name)
    with switch_lock(box.repo):
        if served_version(box.repo, repository_name(name), box.layout) == version:
            return Change(path, version, "serving")
        _discard_if_damaged(box, name, version)
        try:
            outcome = export_version(f"{path}/{version}", box.repo, box.layout, switch=False)
            folder, manifest = exported_version(Path(outcome.folder))
            check = _check(folder, manifest)
        except (InvalidInputError, ExportFolderError, CanaryError) as exc:
            return Change(path, version, "refused", str(exc))
        except (RuntimeError, ValueError, OSError) as exc:  # the runtime could not load it
            return Change(path, version, "refused", f"{type(exc).__name__}: {exc}")
        if not check.ok:
            return Change(path, version, "refused", f"canary: {check.problem}", check.metrics())
        pin_version(folder, manifest)
        return Change(path, version, "serving", metrics=check.metrics())


def _discard_if_damaged(box: Box, name: str, version: int) -> None:
    """Remove a version folder exported before (a switch cut short, or refused) whose files no
    longer match its manifest, to download it again; never the one that serves."""
    folder = box.repo / repository_name(name) / str(version)
    if not (folder / MANIFEST).is_file():
        return
    if version_problems(folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8"))):
        aside = partial_folder(box.repo, folder.parent.name, version)
        shutil.rmtree(aside, ignore_errors=True)
        folder.rename(aside)  # a leftover that the next export removes, never a half-deleted
        shutil.rmtree(aside)  # version folder


def _check(folder: Path, manifest: dict) -> CanaryCheck:
    """The version's detections on its canary images, on this box's runtime."""
    if not manifest.get("canary"):
        raise InvalidInputError("the version carries no canary images to check it on "
                                "(registered before siteml recorded them: quantize it again)")
    canary = folder / CANARY_DIR
    size = int(manifest["canary"]["size"])
    first = canary / sorted(manifest["canary"]["images"])[0]
    precision = EXECUTION_PRECISION.get(manifest.get("precision") or "fp32", "f32")
    model = load(find_model(folder), timing_frame(first, size), LoadOptions(precision))
    return check_canary(model.predict, canary, Tolerance())
