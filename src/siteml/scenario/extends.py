"""``extends: base.yaml``: a scenario file built on another one.

The base (a path relative to the extending file) is deep-merged under the file's own keys:
mappings merge key by key, lists and scalars replace, and ``key: null`` takes the base's out.
A base may extend another; a cycle is refused. Every value keeps the file and line it was
written at, so an error in an inherited value names the base file. Relative file paths that a
base sets (``dataset.path``, a ``.pt`` in ``model.weights_path``) stay relative to the base
that wrote them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from siteml.core.errors import Problem, ScenarioError
from siteml.scenario.yaml_loader import Source, YamlDocument, YamlPath, load_yaml

EXTENDS = "extends"
FILE_PATHS: tuple[tuple[str, str], ...] = (("dataset", "path"), ("model", "weights_path"))
"""Values that name a file relative to the scenario file that sets them."""


def load_extended(path: Path) -> tuple[YamlDocument, list[Path]]:
    """The file with its bases merged in, and every file it was built from (the file first).

    Raises:
        ScenarioError: a file cannot be loaded, ``extends`` is not a path to a file, or the
            chain comes back to a file it passed.
    """
    return _load(path, ())


def _load(path: Path, chain: tuple[Path, ...]) -> tuple[YamlDocument, list[Path]]:
    doc = load_yaml(path)
    if EXTENDS not in doc.data:
        return doc, [path]
    named = doc.data.pop(EXTENDS)

    def fail(message: str) -> ScenarioError:
        return ScenarioError([Problem(doc.file, doc.lines.get((EXTENDS,)), EXTENDS, message)])

    if not isinstance(named, str) or not named.strip():
        raise fail("must be the path of a scenario file, relative to this file")
    base_path = Path(os.path.normpath(path.parent / named))
    seen = (*chain, path.resolve())
    if base_path.resolve() in seen:
        loop = " -> ".join(str(p) for p in (*seen, base_path.resolve()))
        raise fail(f"{named} extends back to a file of its own chain ({loop})")
    if not base_path.is_file():
        raise fail(f"{named}: no such file (looked for {base_path})")
    base, files = _load(base_path, seen)
    _rebase_file_paths(base, base_path.parent, path.parent)
    _merge_under(doc, base)
    return doc, [path, *files]


def _merge_under(doc: YamlDocument, base: YamlDocument) -> None:
    """Put ``base`` under ``doc``'s own keys; what comes from ``base`` keeps its file and line."""
    inherited: dict[YamlPath, Source] = {p: (base.file, line, None)
                                         for p, line in base.lines.items()}
    inherited.update(base.sources)
    for yaml_path, source in inherited.items():
        if yaml_path and _inherits(doc.data, base.data, yaml_path):
            doc.sources[yaml_path] = source
    doc.data = _deep_merge(base.data, doc.data)


def _inherits(own: Any, base: Any, yaml_path: YamlPath) -> bool:
    """Whether the value at ``yaml_path`` comes from the base: the file does not set it, and
    every mapping above it that the file sets merges with the base's."""
    for part in yaml_path:
        if not isinstance(own, dict) or part not in own:
            return True
        if not (isinstance(own[part], dict) and isinstance(base, dict)
                and isinstance(base.get(part), dict)):
            return False
        own, base = own[part], base[part]
    return False


def _deep_merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` over ``base``; ``key: null`` takes out what the base set (a train base's
    ``training:`` from a mine scenario built on it)."""
    merged = dict(base)
    for key, value in own.items():
        if value is None and key in base:
            del merged[key]
            continue
        below = merged.get(key)
        merged[key] = (_deep_merge(below, value)
                       if isinstance(value, dict) and isinstance(below, dict) else value)
    return merged


def _rebase_file_paths(base: YamlDocument, base_dir: Path, file_dir: Path) -> None:
    """Rewrite the base's relative file paths to point from the extending file's folder."""
    if base_dir.resolve() == file_dir.resolve():
        return
    for section, key in FILE_PATHS:
        holder = base.data.get(section)
        if isinstance(holder, dict) and _relative_file(key, holder.get(key)):
            holder[key] = os.path.relpath(base_dir / holder[key], file_dir)


def _relative_file(key: str, value: Any) -> bool:
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return False
    return key != "weights_path" or (value.endswith(".pt") and "@" not in value
                                     and not value.startswith("models:"))
