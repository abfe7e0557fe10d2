"""Model repositories on an edge box: the folders OpenVINO Model Server and Triton load, and
the manifest siteml writes beside every version it exports.

A repository holds ``<model>/<version>/`` folders (the version is the registry's number, so a
server serves the newest), each with ``siteml-manifest.json``: what the files are, where they
came from, and the sha256 of each. OVMS reads ``config.json`` at the top (one entry per model,
``base_path`` relative to that file); Triton reads ``<model>/config.pbtxt``. A file siteml did
not write makes the repository foreign: siteml refuses to write there and never deletes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from siteml.backends.base import Signature, TensorSpec
from siteml.core.digests import differences, file_hashes

LAYOUTS = ("ovms", "triton", "plain")
MANIFEST = "siteml-manifest.json"
SWITCH_LOCK = ".siteml-switch.lock"
OVMS_CONFIG = "config.json"
TRITON_CONFIG = "config.pbtxt"
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64",
                "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32",
                "int64": "TYPE_INT64", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16",
                "uint32": "TYPE_UINT32", "uint64": "TYPE_UINT64", "bool": "TYPE_BOOL"}
"""NumPy dtype names -> Triton's ``DataType`` enum."""


def repository_name(registered: str) -> str:
    """A registered model's name in a repository (unique per site, task and variant, and valid
    for both servers): the dotted name with ``_`` for ``.`` (site slugs hold no ``_``)."""
    return registered.replace(".", "_")


def manifests(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each exported version folder under ``root`` and its manifest (``<model>/<version>/``)."""
    for path in sorted(root.glob(f"*/*/{MANIFEST}")):
        yield path.parent, json.loads(path.read_text(encoding="utf-8"))


def foreign_files(root: Path) -> list[Path]:
    """Files under ``root`` that siteml did not write: not a manifest, not listed in the
    manifest of their version folder, not a server config of siteml's models."""
    if not root.exists():
        return []
    if not root.is_dir():
        return [root]
    ours: set[Path] = set()
    for folder, manifest in manifests(root):
        ours |= {folder / MANIFEST, *(folder / name for name in manifest.get("files", {}))}
        ours.add(folder.parent / TRITON_CONFIG)
    if (root / OVMS_CONFIG).exists() and _ovms_entries(root) is not None:
        ours.add(root / OVMS_CONFIG)
    return [path for path in sorted(root.rglob("*")) if path.is_file() and path not in ours
            and not _partial(path.relative_to(root))]


def _partial(path: Path) -> bool:
    """Whether ``path`` (relative to a repository) is siteml's own but in no manifest: a
    leftover of a write siteml did not finish (killed), a ``.<name>.partial`` file or folder
    that the next write removes, or a box agent's lock file (``.siteml-*.lock``)."""
    return (any(part.startswith(".") and part.endswith(".partial") for part in path.parts)
            or (len(path.parts) == 1 and path.name.startswith(".siteml-")
                and path.suffix == ".lock"))


def partial_folder(root: Path, name: str, version: int | str | None = None) -> Path:
    """Where a version folder of model ``name`` is written before it is moved into place, or
    where a model or version folder goes to be deleted."""
    return root / (f".{name}-{version}.partial" if version is not None else f".{name}.partial")


def remove_folder(folder: Path) -> None:
    """Delete a model folder of a repository or a version folder of one: moved aside whole
    first, so that a kill midway leaves a leftover the next write removes, never a
    half-deleted folder that a server or a manifest would read."""
    if (folder / MANIFEST).is_file():
        aside = partial_folder(folder.parents[1], folder.parent.name, folder.name)
    else:
        aside = partial_folder(folder.parent, folder.name)
    shutil.rmtree(aside, ignore_errors=True)
    folder.rename(aside)
    shutil.rmtree(aside)


def exported_versions(root: Path, name: str) -> list[int]:
    """The versions of model ``name`` exported into the repository (folders with a
    manifest), in order."""
    return sorted(int(path.parent.name) for path in (root / name).glob(f"*/{MANIFEST}")
                  if path.parent.name.isdigit())


def prune_versions(root: Path, name: str, keep: set[int]) -> list[int]:
    """Delete the version folders of model ``name`` but those in ``keep``; the ones deleted."""
    gone = [version for version in exported_versions(root, name) if version not in keep]
    for version in gone:
        remove_folder(root / name / str(version))
    return gone


def unserve(root: Path, name: str) -> None:
    """Stop serving model ``name`` and delete its folder: OVMS's config stops listing it (the
    config replaced by a rename) before its files go; Triton loses the folder itself."""
    entries = _ovms_entries(root)
    if entries is not None:
        kept = [entry for entry in entries if entry["config"].get("name") != name]
        write_atomically(root / OVMS_CONFIG, json.dumps({"model_config_list": kept}, indent=2)
                         + "\n")
    if (root / name).is_dir():
        remove_folder(root / name)


@contextmanager
def switch_lock(root: Path) -> Iterator[None]:
    """Hold the repository's switch lock, waiting for another switch to end: what a box
    serves changes under it only."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / SWITCH_LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _ovms_entries(root: Path) -> list[dict[str, Any]] | None:
    """The ``model_config_list`` of ``config.json`` when each entry is a model siteml
    exported (its ``base_path`` a folder of this repository holding a manifest); else None."""
    try:
        entries = json.loads((root / OVMS_CONFIG).read_text(encoding="utf-8"))[
            "model_config_list"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ok = all(isinstance(e, dict) and isinstance(e.get("config"), dict)
             and any((root / str(e["config"].get("base_path", ""))).glob(f"*/{MANIFEST}"))
             for e in entries)
    return entries if ok else None


def add_to_ovms_config(root: Path, name: str, version: int | None = None) -> None:
    """List model ``name`` in ``config.json`` (once), keeping every other entry; with
    ``version``, pin it to that version (OVMS serves the highest folder unless told)."""
    entries = _ovms_entries(root) or []
    entry = next((e for e in entries if e["config"].get("name") == name), None)
    if entry is None:
        entry = {"config": {"name": name, "base_path": name}}
        entries.append(entry)
    elif version is None:
        return
    if version is not None:
        entry["config"]["model_version_policy"] = {"specific": {"versions": [version]}}
    write_atomically(root / OVMS_CONFIG, json.dumps({"model_config_list": entries}, indent=2)
                     + "\n")


def triton_config(name: str, backend: str, signature: Signature,
                  version: int | None = None) -> str:
    """``config.pbtxt`` of a model served without server-side batching (``max_batch_size: 0``:
    the dims are the model's own, batch included; -1 is dynamic); with ``version``, only that
    version is served."""
    def tensors(kind: str, specs: tuple[TensorSpec, ...]) -> str:
        rows = [f'  {{\n    name: "{spec.name}"\n    data_type: {TRITON_TYPES[spec.dtype]}\n'
                f'    dims: [ {", ".join(map(str, spec.shape))} ]\n  }}' for spec in specs]
        return f"{kind} [\n" + ",\n".join(rows) + "\n]\n"

    policy = (f"version_policy: {{ specific: {{ versions: [ {version} ] }} }}\n"
              if version is not None else "")
    return (f'name: "{name}"\nbackend: "{backend}"\nmax_batch_size: 0\n{policy}'
            + tensors("input", signature.inputs) + tensors("output", signature.outputs))


def pin_version(folder: Path, manifest: dict[str, Any]) -> None:
    """Make the server of the repository serve the exported version ``folder`` (and no other
    of its model): its config is replaced whole by a rename, so the server never reads a
    half-written one."""
    root, name, version = folder.parents[1], folder.parent.name, int(folder.name)
    if manifest["layout"] == "ovms":
        add_to_ovms_config(root, name, version)
    elif manifest["layout"] == "triton":
        signature = Signature(*(tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"]))
                                      for t in manifest[kind]) for kind in ("inputs", "outputs")))
        write_atomically(folder.parent / TRITON_CONFIG,
                         triton_config(name, manifest["backend"], signature, version))


_TRITON_PINNED = re.compile(r"version_policy:\s*{\s*specific:\s*{\s*versions:\s*\[\s*(\d+)")


def served_version(root: Path, name: str, layout: str) -> int | None:
    """The version of model ``name`` the repository's server serves: the one its config pins,
    else the highest version folder siteml exported; None when the config does not list the
    model (OVMS) or no version is there."""
    pinned: int | None = None
    if layout == "ovms":
        entry = next((e["config"] for e in _ovms_entries(root) or []
                      if e["config"].get("name") == name), None)
        if entry is None:
            return None
        versions = entry.get("model_version_policy", {}).get("specific", {}).get("versions")
        pinned = int(versions[0]) if versions else None
    elif layout == "triton":
        config = root / name / TRITON_CONFIG
        if not config.is_file():
            return None
        found = _TRITON_PINNED.search(config.read_text(encoding="utf-8"))
        pinned = int(found[1]) if found else None
    exported = exported_versions(root, name)
    if pinned is not None:
        return pinned if pinned in exported else None
    return max(exported, default=None)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a file beside ``path``, then move it into place."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def verify(root: Path) -> tuple[int, list[str]]:
    """Rehash every exported version under ``root`` against its manifest; the number of
    manifests and one line per problem (``version_problems``, and a model its server's config
    does not name)."""
    problems, count = [], 0
    listed = {e["config"].get("name") for e in _ovms_entries(root) or []}
    for folder, manifest in manifests(root):
        count += 1
        problems += version_problems(folder, manifest)
        layout, name = manifest.get("layout"), folder.parent.name
        if layout == "ovms" and name not in listed:
            problems.append(f"{root / OVMS_CONFIG} does not list model {name}")
        if layout == "triton" and not (folder.parent / TRITON_CONFIG).is_file():
            problems.append(f"missing: {folder.parent / TRITON_CONFIG}")
    return count, problems


def version_problems(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """One exported version's files against its manifest: a changed, missing or unlisted
    file."""
    expected, found = manifest.get("files", {}), file_hashes(folder, skip=MANIFEST)
    problems = differences(expected, found, folder)
    problems += [f"not in its manifest: {folder / name}" for name in found
                 if name not in expected]
    return problems


class ExportFolderError(ValueError):
    """An export folder holds no single exported version, or its files differ from its
    manifest."""


def exported_version(folder: Path) -> tuple[Path, dict[str, Any]]:
    """``exported_manifest``, with the version's files checked against the manifest.

    Raises:
        ExportFolderError: as ``exported_manifest``, or files that differ.
    """
    version, manifest = exported_manifest(folder)
    problems = version_problems(version, manifest)
    if problems:
        raise ExportFolderError(f"{version}: its files differ from its manifest: "
                                f"{'; '.join(problems[:3])}")
    return version, manifest


def exported_manifest(folder: Path) -> tuple[Path, dict[str, Any]]:
    """The exported version ``folder`` names, and its manifest (files not read): the folder
    itself (a version folder), the newest version of a model folder, or that of a
    repository's only model.

    Raises:
        ExportFolderError: no manifest there, several models, or one siteml did not write.
    """
    versions = [p.parent for p in folder.glob(f"*/{MANIFEST}") if p.parent.name.isdigit()]
    models = sorted({p.parent.parent for p in folder.glob(f"*/*/{MANIFEST}")})
    if (folder / MANIFEST).is_file():
        version = folder
    elif versions:
        version = max(versions, key=lambda p: int(p.name))
    elif len(models) == 1:
        return exported_manifest(models[0])
    elif models:
        raise ExportFolderError(f"{folder} holds {len(models)} exported models "
                                f"({', '.join(m.name for m in models)}): name one of their "
                                "folders")
    else:
        raise ExportFolderError(f"{folder} holds no version written by siteml export "
                                f"(no {MANIFEST})")
    try:
        manifest = json.loads((version / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportFolderError(f"{version / MANIFEST} cannot be read: {exc}") from None
    missing = [key for key in ("registered_model", "version", "lineage", "files")
               if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise ExportFolderError(f"{version / MANIFEST} is not a manifest of siteml export "
                                f"(it lacks {', '.join(missing)})")
    return version, manifest
