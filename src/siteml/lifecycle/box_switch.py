"""One switch of an edge box to a version: export it beside what serves, check it on the box's
own runtime against the detections registered for its canary images, and pin the server's
config to it. The box agent runs this in a child process (``siteml box switch``), so that
the agent itself never holds MLflow's client or a runtime between switches.

Switches of one repository take turns (a lock file): an agent killed mid-switch leaves its
child to finish, and the next agent's switch waits for it, then finds the work done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from siteml.backends.base import LoadOptions
from siteml.backends.registry import execution_precision, find_model, load
from siteml.core.errors import InvalidInputError
from siteml.core.models import CANARY_DIR
from siteml.core.naming import registry_path
from siteml.lifecycle.box_agent import Box, Change
from siteml.lifecycle.export import export_version
from siteml.lifecycle.repository import (
    MANIFEST,
    ExportFolderError,
    exported_version,
    pin_version,
    prune_versions,
    remove_folder,
    repository_name,
    served_version,
    switch_lock,
    version_problems,
)
from siteml.pipelines.canary import (
    CanaryCheck,
    CanaryError,
    Predict,
    Tolerance,
    check_canary,
)
from siteml.pipelines.images import timing_frame
from siteml.tracking.model_resolve import DamagedDownloadError


def switch(box: Box, name: str, version: int) -> Change:
    """Serve ``name``/``version`` on ``box`` unless it fails its checks (a refusal leaves the
    version that serves now).

    Raises:
        TrackingUnavailableError, MlflowException: the registry did not answer (nothing
            switched; the agent tries again next cycle).
    """
    path = registry_path(name)
    with switch_lock(box.repo):
        before = served_version(box.repo, repository_name(name), box.layout)
        if before == version:
            return Change(path, version, "serving")
        _discard_if_damaged(box, name, version)
        try:
            outcome = export_version(f"{path}/{version}", box.repo, box.layout, switch=False)
            folder, manifest = exported_version(Path(outcome.folder))
            check = _check(box, folder, manifest, before)
        except (InvalidInputError, ExportFolderError, CanaryError, DamagedDownloadError) as exc:
            return Change(path, version, "refused", str(exc))
        except (RuntimeError, ValueError, OSError) as exc:  # the runtime could not load it
            return Change(path, version, "refused", f"{type(exc).__name__}: {exc}")
        if not check.ok:
            return Change(path, version, "refused", f"canary: {check.problem}", check.metrics())
        pin_version(folder, manifest)
        prune_versions(box.repo, folder.parent.name, {version, before or version})
        return Change(path, version, "serving", metrics=check.metrics())


def _discard_if_damaged(box: Box, name: str, version: int) -> None:
    """Remove a version folder exported before (a switch cut short, or refused) whose files no
    longer match its manifest, to download it again; never the one that serves."""
    folder = box.repo / repository_name(name) / str(version)
    if (folder / MANIFEST).is_file() and version_problems(
            folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8"))):
        remove_folder(folder)


def _check(box: Box, folder: Path, manifest: dict, served: int | None) -> CanaryCheck:
    """The version's detections on its canary images, on this box's runtime, timed in turns
    with the version of the same model that serves now (``served``, if one does)."""
    if not manifest.get("canary"):
        raise InvalidInputError("the version carries no canary images to check it on "
                                "(registered before siteml recorded them: quantize it again)")
    canary = folder / CANARY_DIR
    first = canary / sorted(manifest["canary"]["images"])[0]
    model = _loaded(folder, manifest, first)
    reference = None
    try:
        if served is not None:
            reference = _on_own_frame(*exported_version(folder.parent / str(served)), first)
    except ExportFolderError:  # what serves is damaged on disk: nothing to time against
        pass
    return check_canary(model.predict, canary, Tolerance(max_slowdown=box.max_slowdown),
                        reference)


def _size(manifest: dict) -> int:
    return int((manifest.get("canary") or {}).get("size") or manifest["input_size"])


def _loaded(folder: Path, manifest: dict, image: Path) -> Any:
    """The exported version ``folder`` loaded on this box's runtime, at its input size."""
    precision = execution_precision(manifest.get("precision"))
    return load(find_model(folder), timing_frame(image, _size(manifest)), LoadOptions(precision))


def _on_own_frame(folder: Path, manifest: dict, image: Path) -> Predict:
    """A prediction of the exported version ``folder`` on ``image`` at its own input size,
    whatever frame it is given: the reference a new version is timed against (the two input
    sizes may differ)."""
    model = _loaded(folder, manifest, image)
    frame = timing_frame(image, _size(manifest))
    return lambda _: model.predict(frame)
