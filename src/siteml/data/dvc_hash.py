"""The hash ``dvc add DIR`` records for a folder, computed without DVC.

DVC 3 stores a folder as a ``.dir`` object: the JSON list of ``{"md5": <file md5>, "relpath":
<posix path>}`` sorted by path, dumped with sorted keys; its md5 plus ``.dir`` is the folder's
hash, as written to ``DIR.dvc`` (``outs[0].md5``). A test checks this against the real ``dvc``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

CHUNK = 1024 * 1024
_SKIP_DIRS = {".git", ".dvc"}


@dataclass(frozen=True)
class DirHash:
    """A folder's DVC hash, with the size and file count that ``DIR.dvc`` also records."""

    md5: str
    size: int
    nfiles: int


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> list[Path]:
    """Every file DVC would track under ``root``."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        found.extend(Path(folder, name) for name in files)
    return found


def dir_hash(root: Path, files: list[Path] | None = None,
             progress: Callable[[str], None] | None = None) -> DirHash:
    """The ``md5`` (``<32 hex>.dir``), total size and file count of ``root`` as DVC sees it.

    Args:
        root: The folder.
        files: Its files, when already listed (``list_files``).
        progress: Called once per file hashed.
    """
    entries = []
    for path in files if files is not None else list_files(root):
        entries.append((path.relative_to(root).as_posix(), file_md5(path), path.stat().st_size))
        if progress:
            progress("")
    return hash_entries(entries)


def hash_entries(entries: list[tuple[str, str, int]]) -> DirHash:
    """The folder hash from its files' (posix relpath, md5, size), for a writer that knows
    them already."""
    listing = sorted(({"md5": md5, "relpath": relpath} for relpath, md5, _ in entries),
                     key=lambda e: e["relpath"])
    digest = hashlib.md5(json.dumps(listing, sort_keys=True).encode("utf-8")).hexdigest()
    return DirHash(digest + ".dir", sum(size for *_, size in entries), len(entries))


def dvc_file(root: Path) -> Path:
    """``DIR.dvc``, the file ``dvc add DIR`` writes beside the folder."""
    return root.with_name(root.name + ".dvc")


def read_dvc_file(path: Path) -> str | None:
    """The ``md5`` recorded in a ``.dvc`` file, or None when it records none."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    outs = data.get("outs") or [{}]
    md5 = outs[0].get("md5") if isinstance(outs[0], dict) else None
    return str(md5) if md5 else None


def write_dvc_file(root: Path, found: DirHash) -> Path:
    """Write ``DIR.dvc`` as ``dvc add`` would, so that DVC and siteml agree on the folder."""
    path = dvc_file(root)
    out = {"md5": found.md5, "size": found.size, "nfiles": found.nfiles, "hash": "md5",
           "path": root.name}
    path.write_text(yaml.safe_dump({"outs": [out]}, sort_keys=False), encoding="utf-8")
    return path
