"""The hash ``dvc add DIR`` records for a folder, computed without DVC; a file siteml hashed
before, unchanged since, is not read again (``file_state``).

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

from siteml.data.file_state import Known, recall, remember

CHUNK = 1024 * 1024
_SKIP_DIRS = {".git", ".dvc"}


@dataclass(frozen=True)
class DirHash:
    """A folder's DVC hash, with the size and file count that ``DIR.dvc`` also records."""

    md5: str
    size: int
    nfiles: int


def file_md5(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> list[str]:
    """Every file DVC would track under ``root``, as posix paths relative to it (strings: a
    dataset has hundreds of thousands)."""
    base = os.fspath(root)
    found: list[str] = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        inside = os.path.relpath(folder, base)
        prefix = "" if inside == os.curdir else inside.replace(os.sep, "/") + "/"
        found.extend(prefix + name for name in files)
    return found


def dir_hash(root: Path, files: list[str] | None = None,
             progress: Callable[[str], None] | None = None) -> DirHash:
    """The ``md5`` (``<32 hex>.dir``), total size and file count of ``root`` as DVC sees it.

    Args:
        root: The folder.
        files: Its files, when already listed (``list_files``).
        progress: Called once per file.
    """
    files = files if files is not None else list_files(root)
    known, _ = hashed([os.path.join(root, relpath) for relpath in files], progress)
    return hash_entries([(relpath, str(found.md5), found.stat.st_size)
                         for relpath, found in zip(files, known.values(), strict=True)])


def hashed(files: list[str], progress: Callable[[str], None] | None = None
           ) -> tuple[dict[str, Known], int]:
    """Each file with its md5: the file state's where it knows the file as it is, else read
    (and kept there); and how many were read."""
    known = recall(files)
    learned = []
    for path, found in known.items():
        if found.md5 is None:
            found = known[path] = Known(found.stat, file_md5(path), found.phash)
            learned.append(found)
        if progress:
            progress("")
    remember(learned)
    return known, len(learned)


def hash_entries(entries: list[tuple[str, str, int]]) -> DirHash:
    """The folder hash from its files' (posix relpath, md5, size), for a writer that knows
    them already."""
    listing = sorted(({"md5": md5, "relpath": relpath} for relpath, md5, _ in entries),
                     key=lambda e: e["relpath"])
    digest = hashlib.md5(json.dumps(listing, sort_keys=True).encode("utf-8")).hexdigest()
    return DirHash(digest + ".dir", sum(size for *_, size in entries), len(entries))


def dataset_block(root: Path, found: DirHash, images: dict[str, int]) -> dict[str, object]:
    """A dataset version's fields of a scenario's ``dataset:`` block, ready to paste
    (``version`` is the user's)."""
    return {"path": str(root.resolve()), "dvc_hash": found.md5,
            "image_count": sum(images.values())}


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


def write_hashed(root: Path, relpath: str, text: str) -> tuple[str, str, int]:
    """Write a text file under ``root``; its (relpath, md5, size) for ``hash_entries``."""
    data = text.encode("utf-8")
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return relpath, hashlib.md5(data).hexdigest(), len(data)
