"""``siteml export``: a registered version into a model repository for the edge box's
inference server (OVMS, Triton, or the plain files), with a verifiable manifest.

Everything is checked before the first write (the reference, the repository, the layout
against the model's format); the version's files are downloaded and written into a hidden
folder of the repository, which is moved into place whole, and only then is the server's
config updated. Exporting a version that is already there, unchanged, writes nothing.

A version registered with canary detections carries them into its version folder
(``canary/``, hashed like every file, and summed up in the manifest's ``canary``): the box
checks its own runtime against them before it serves the version. OVMS and Triton ignore the
subfolder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siteml import __version__
from siteml.backends.registry import find_model, get
from siteml.core import keys
from siteml.core.digests import file_hashes
from siteml.core.errors import InvalidInputError
from siteml.core.models import CANARY_DIR
from siteml.core.naming import ModelRef, registry_path
from siteml.lifecycle.repository import (
    LAYOUTS,
    MANIFEST,
    TRITON_CONFIG,
    add_to_ovms_config,
    foreign_files,
    partial_folder,
    repository_name,
    triton_config,
    version_problems,
    write_atomically,
)
from siteml.pipelines.canary import read_canary
from siteml.tracking.model_access import open_registry, parse_reference
from siteml.tracking.model_listing import headline_metrics
from siteml.tracking.model_resolve import download_version, resolve
from siteml.tracking.store import Store


@dataclass
class ExportOutcome:
    """What ``siteml export`` did: ``exported``, or ``unchanged`` (already there)."""

    status: str
    registered_model: str
    version: int
    folder: str
    layout: str
    files: dict[str, str] = field(default_factory=dict)
    download_s: float = 0.0
    write_s: float = 0.0
    seconds: float = 0.0
    """From the call to the end (the command adds Python's and MLflow's imports)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_version(reference: str, root: Path, layout: str,
                   store: Store | None = None, switch: bool = True) -> ExportOutcome:
    """Export the version ``reference`` names into the repository at ``root``; with
    ``switch`` false, leave the server's config as it is (the box agent checks the version
    before it pins the config to it).

    Raises:
        InvalidInputError: a bad reference or layout, a missing model, alias or version, a
            repository holding files siteml did not write or whose export of this version
            changed, a layout that cannot hold the model's format (nothing written).
    """
    called = time.perf_counter()
    if layout not in LAYOUTS:
        raise InvalidInputError(f"--layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    ref = parse_reference(reference)
    _refuse_foreign(root)
    store, client = open_registry(ref, store=store)
    version = resolve(client, ref)
    tags = dict(version.tags)
    if keys.MODEL_CLASSES not in tags and keys.SOURCE_MODEL_NAME in tags:  # a variant made
        source = client.get_model_version(  # before variants carried their classes
            tags[keys.SOURCE_MODEL_NAME], tags[keys.SOURCE_MODEL_VERSION])
        tags[keys.MODEL_CLASSES] = source.tags.get(keys.MODEL_CLASSES, "")
    backend = get(tags.get(keys.MODEL_BACKEND, "pytorch"))
    if layout != "plain" and backend.serve is None:
        raise InvalidInputError(
            f"{registry_path(version.name)}/{version.version} is a {backend.name} model "
            f"({tags.get(keys.MODEL_FORMAT, '?')}), which {layout} cannot serve: export an "
            "OpenVINO or ONNX variant, or use --layout plain")
    name = repository_name(version.name)
    folder = root / name / str(version.version)
    if (folder / MANIFEST).exists():
        return _unchanged(folder, version, layout)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        registered = download_version(version, Path(tmp), store.tracking_uri).path
        model = find_model(registered)
        downloaded = time.perf_counter()
        partial = partial_folder(root, name, version.version)
        shutil.rmtree(partial, ignore_errors=True)  # siteml's own leftover of a crashed export
        partial.mkdir(parents=True)
        if layout == "plain":
            served = partial / model.name
            (shutil.copytree if model.is_dir() else shutil.copy2)(model, served)
        else:
            served = backend.serve(model, partial)  # type: ignore[misc]
        signature = backend.signature(served) if backend.signature else None
        canary = _copy_canary(registered, partial)
        files = file_hashes(partial)
        manifest = _manifest(version, tags, ref, layout, name, signature, canary, files)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial.rename(folder)
    if switch and layout == "ovms":
        add_to_ovms_config(root, name)
    elif switch and layout == "triton":
        write_atomically(root / name / TRITON_CONFIG,
                         triton_config(name, backend.name, signature))  # type: ignore[arg-type]
    ended = time.perf_counter()
    return ExportOutcome("exported", version.name, int(version.version), str(folder), layout,
                         files, round(downloaded - started, 3), round(ended - downloaded, 3),
                         round(ended - called, 3))


def _copy_canary(registered: Path, partial: Path) -> dict[str, Any] | None:
    """Copy the version's ``canary/`` (at the root of its files) into the version folder; its
    size, thresholds and detections for the manifest, or None for a version without one
    (registered before versions carried canaries)."""
    if not (registered / CANARY_DIR).is_dir():
        return None
    canary = Path(shutil.copytree(registered / CANARY_DIR, partial / CANARY_DIR))
    stored = read_canary(canary)
    return {"folder": CANARY_DIR, **{key: stored[key] for key in ("size", "conf", "iou",
                                                                    "images")}}


def _refuse_foreign(root: Path) -> None:
    foreign = foreign_files(root)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise InvalidInputError(
            f"{root} holds files siteml did not write ({foreign[0]}{more}); export into an "
            "empty folder or a repository siteml made (siteml never deletes them)")


def _unchanged(folder: Path, version: Any, layout: str) -> ExportOutcome:
    """The version is exported already: unchanged, or refused when its files changed."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    mine = version_problems(folder, manifest)
    if manifest.get("layout") != layout or mine:
        why = mine[0] if mine else f"it was exported as {manifest.get('layout')}"
        raise InvalidInputError(f"{folder} already holds {registry_path(version.name)}/"
                                f"{version.version} and differs ({why}); check it with "
                                f"siteml export --verify {folder.parents[1]}")
    return ExportOutcome("unchanged", version.name, int(version.version), str(folder), layout,
                         manifest["files"])


def _manifest(version: Any, tags: dict[str, str], ref: ModelRef, layout: str, name: str,
              signature: Any, canary: dict[str, Any] | None,
              files: dict[str, str]) -> dict[str, Any]:
    """What the files are and where they came from; ``canary``: the canary's detections;
    ``files``: their sha256."""
    size = tags.get(keys.MODEL_INPUT_SIZE)
    return {
        "siteml_manifest": 1,
        "registered_model": version.name,
        "model_path": registry_path(version.name),
        "version": int(version.version),
        "resolved_from": f"@{ref.alias}" if ref.alias else f"/{ref.version}",
        "repository_name": name,
        "layout": layout,
        "backend": tags.get(keys.MODEL_BACKEND),
        "format": tags.get(keys.MODEL_FORMAT),
        "precision": tags.get(keys.MODEL_PRECISION),
        "classes": tags.get(keys.MODEL_CLASSES, "").split(",") if tags.get(
            keys.MODEL_CLASSES) else [],
        "input_size": int(size) if size else None,
        "inputs": [t.to_dict() for t in signature.inputs] if signature else [],
        "outputs": [t.to_dict() for t in signature.outputs] if signature else [],
        "lineage": {
            "run_id": version.run_id,
            "source_model": tags.get(keys.SOURCE_MODEL_NAME),
            "source_version": tags.get(keys.SOURCE_MODEL_VERSION),
            "source_run_id": tags.get(keys.role_tag("source", "run_id")),
            "dataset_dvc_hash": tags.get(keys.DATA_DVC_HASH),
            "dataset_version": tags.get(keys.DATA_VERSION),
            "scenario": tags.get(keys.SCENARIO),
        },
        "metrics": headline_metrics(tags),
        "canary": canary,
        "siteml_version": __version__,
        "files": files,
    }
