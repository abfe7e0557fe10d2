"""sha256 of files and of the files of a folder: what a registered version and an exported
one record, so that a copy of them can be checked file by file."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path, skip: str = "") -> dict[str, str]:
    """Every file under ``folder`` (but one named ``skip``), by its path relative to the
    folder, with its sha256."""
    return {path.relative_to(folder).as_posix(): sha256(path)
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != skip}


def folder_digest(folder: Path) -> str:
    """One sha256 over every file's path and sha256 under ``folder``: its content, by name."""
    lines = "".join(f"{name}\t{digest}\n" for name, digest in file_hashes(folder).items())
    return hashlib.sha256(lines.encode()).hexdigest()


def differences(expected: dict[str, str], found: dict[str, str], folder: Path) -> list[str]:
    """The files of ``expected`` (path -> sha256) that ``found`` lacks or holds changed, one
    line each naming the file under ``folder``."""
    problems = []
    for name, digest in expected.items():
        if name not in found:
            problems.append(f"missing: {folder / name}")
        elif found[name] != digest:
            problems.append(f"changed: {folder / name} (sha256 {found[name][:12]}…, "
                            f"expected {digest[:12]}…)")
    return problems
