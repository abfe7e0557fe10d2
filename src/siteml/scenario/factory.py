"""The one way to build a scenario: ``load_scenario(path, overrides)``.

Loads the YAML safely, merges the bases it ``extends``, resolves a site id to its
``configs/sites/<id>.yaml``, applies ``--set`` overrides, picks the scenario class by
``experiment_type`` and validates. Every problem of a file is reported together, each as
``FILE:LINE: yaml.path: message``.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from siteml.core.errors import Problem, ScenarioError
from siteml.core.naming import slug_problem
from siteml.scenario.extends import load_extended
from siteml.scenario.schema import BaseScenario, SiteConfig
from siteml.scenario.types import SCENARIO_TYPES
from siteml.scenario.yaml_loader import YamlDocument, YamlPath, load_yaml

SITES_DIR = Path("configs", "sites")
YAML_SUFFIXES = (".yaml", ".yml")
BASE_PREFIX = "_"
PROGRESS_FILES = 2000  # hash with a progress bar above this many files
PARAM_SECTIONS = {cls.params_key: name for name, cls in SCENARIO_TYPES.items()}

M = TypeVar("M", bound=BaseModel)


def load_scenario(path: str | Path, overrides: Sequence[str] = (),
                  sites_dir: str | Path | None = None, check_data: bool = False) -> BaseScenario:
    """Load and validate one scenario file.

    Args:
        path: The scenario YAML.
        overrides: ``KEY.PATH=VALUE`` strings applied before validation; values are YAML
            (``training.epochs=5``, ``task.classes=[a, b]``).
        sites_dir: Folder of ``<site-id>.yaml`` files; by default ``configs/sites`` is searched
            upward from the scenario's folder.
        check_data: Also check the dataset folder against the file (exists, image count, DVC
            hash), as ``siteml run`` does before it records anything.

    Returns:
        The TrainingScenario, InferenceBenchmarkScenario or QuantizationScenario it describes.

    Raises:
        ScenarioError: every problem found, with file, line and YAML path.
    """
    path = Path(path)
    doc, files = load_extended(path)
    problems = _apply_overrides(doc, overrides)
    problems += _resolve_site(doc, path, Path(sites_dir) if sites_dir else None)
    experiment_type = doc.data.get("experiment_type")
    cls = SCENARIO_TYPES.get(experiment_type) if isinstance(experiment_type, str) else None
    data = doc.data
    if cls is None:
        problems.append(_problem(doc, ("experiment_type",), _type_message(experiment_type)))
        data = {k: v for k, v in data.items() if k not in PARAM_SECTIONS}
        cls = BaseScenario
    skip = {p.path.split(".")[0] for p in problems}
    scenario = _validate(cls, data, doc, path.absolute().parent, problems, skip)
    scenario.source_files = files
    if check_data:
        problems = _check_dataset(scenario, doc)
        if problems:
            raise ScenarioError(problems)
    return scenario


def scenario_problem(path: str | Path, overrides: Sequence[str], yaml_path: str,
                     message: str) -> ScenarioError:
    """A problem found after loading (against the registry, say), located like the loader's
    own: file, line (or the ``--set`` that gave the value) and YAML path."""
    doc, _ = load_extended(Path(path))
    _apply_overrides(doc, overrides)
    return ScenarioError([_problem(doc, tuple(yaml_path.split(".")), message)])


def load_site(path: str | Path) -> SiteConfig:
    """Load and validate one site file (``configs/sites/<id>.yaml``)."""
    path = Path(path)
    doc = load_yaml(path)
    problems = [] if slug_problem(path.stem) is None else [
        _problem(doc, (), f"site id (file name) {path.stem!r} {slug_problem(path.stem)}")]
    return _validate(SiteConfig, doc.data, doc, path.absolute().parent, problems, set())


def find_site(site: str, sites_dir: Path | None = None,
              cwd: Path | None = None) -> tuple[Path, SiteConfig]:
    """The site file of site path ``site`` (``customer/region-plant/zone``) and its config, in
    ``sites_dir`` or the first ``configs/sites`` folder from ``cwd`` upwards.

    Raises:
        ScenarioError: a site file there is invalid.
        FileNotFoundError: no folder, or no file of that site in it (the message says which).
    """
    here = (cwd or Path.cwd()).absolute()
    folders = [sites_dir] if sites_dir else [d / SITES_DIR for d in (here, *here.parents)]
    folder = next((f for f in folders if f.is_dir()), None)
    if folder is None:
        raise FileNotFoundError(f"no {SITES_DIR} folder in or above {here} (use --sites-dir)")
    files = sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES)
    for path in files:
        config = load_site(path)
        if config.get_experiment_name() == site:
            return path, config
    raise FileNotFoundError(f"no site file of {site} in {folder} (it has "
                            f"{', '.join(p.stem for p in files) or 'none'})")


def is_site_file(path: Path) -> bool:
    """True for a file in a ``configs/sites`` folder."""
    return path.parent.name == SITES_DIR.name and path.parent.parent.name == SITES_DIR.parent.name


def load_any(path: Path) -> BaseScenario | SiteConfig:
    """Load a site file or a scenario file, told apart by location."""
    return load_site(path) if is_site_file(path) else load_scenario(path)


def find_yaml_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into YAML files, sorted. A folder is searched recursively,
    skipping hidden folders and bases (``_name.yaml``: a partial scenario that others
    ``extends``, checked through them)."""
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found.extend(sorted(
                p for p in entry.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()
                and not p.name.startswith(BASE_PREFIX)
                and not any(part.startswith(".") for part in p.relative_to(entry).parts)))
        else:
            found.append(entry)
    return found


_hashed: dict[tuple[Path, tuple[tuple[str, int, int], ...]], Any] = {}
"""Dataset hashes of this process, by folder and its files' names, sizes and mtimes (as DVC
trusts them): a batch whose scenarios share a dataset hashes it once."""


def _check_dataset(scenario: BaseScenario, doc: YamlDocument) -> list[Problem]:
    """The folder exists, holds ``image_count`` images, and hashes to ``dvc_hash`` (which a
    ``DIR.dvc`` beside it, when present, must also record)."""
    from siteml.core.progress import progress_bar
    from siteml.data.dvc_hash import dir_hash, dvc_file, list_files, read_dvc_file
    from siteml.data.layout import count_images

    dataset = scenario.dataset
    if not dataset.path.is_dir():
        return [_problem(doc, ("dataset", "path"), f"dataset folder {dataset.path} does not exist")]
    found = count_images(dataset.path)
    if found != dataset.image_count:
        return [_problem(doc, ("dataset", "image_count"), f"is {dataset.image_count} but "
                         f"{dataset.path} holds {found} images")]
    problems = []
    recorded_file = dvc_file(dataset.path)
    recorded = read_dvc_file(recorded_file) if recorded_file.is_file() else dataset.dvc_hash
    if recorded != dataset.dvc_hash:
        problems.append(_problem(doc, ("dataset", "dvc_hash"), f"is {dataset.dvc_hash} but "
                                 f"{recorded_file} records {recorded}"))
    files = list_files(dataset.path)
    stats = [os.stat(os.path.join(dataset.path, f)) for f in files]
    seen = (dataset.path, tuple((f, s.st_size, s.st_mtime_ns)
                                for f, s in zip(files, stats, strict=True)))
    actual = _hashed.get(seen)
    if actual is None and len(files) > PROGRESS_FILES:
        with progress_bar(f"hashing {dataset.path.name}", len(files)) as advance:
            actual = dir_hash(dataset.path, files, advance)
    elif actual is None:
        actual = dir_hash(dataset.path, files)
    _hashed[seen] = actual
    if actual.md5 != dataset.dvc_hash:
        problems.append(_problem(doc, ("dataset", "dvc_hash"), f"is {dataset.dvc_hash} but "
                                 f"{dataset.path} hashes to {actual.md5} (changed since "
                                 "'dvc add'? run 'dvc status', or --skip-data-check)"))
    return problems


def _validate(cls: type[M], data: dict[str, Any], doc: YamlDocument, base_dir: Path,
              problems: list[Problem], skip: set[str]) -> M:
    try:
        result = cls.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if loc and loc[0] in skip:
                continue
            ctx = err.get("ctx") or {}
            if "field" in ctx:
                loc = tuple(int(p) if p.isdigit() else p for p in str(ctx["field"]).split("."))
            problems.append(_problem(doc, loc, _message(cls, err, loc)))
    if problems:
        raise ScenarioError(sorted(problems, key=lambda p: (p.file != doc.file, p.line or 0)))
    return result


def _problem(doc: YamlDocument, loc: YamlPath, message: str) -> Problem:
    file, line, origin = doc.locate(loc)
    return Problem(file, line, ".".join(str(p) for p in loc), message, origin)


def _type_message(value: Any) -> str:
    valid = ", ".join(SCENARIO_TYPES)
    if value is None:
        return f"required key missing; set it to one of: {valid}"
    return f"unknown experiment_type {value!r}; valid: {valid}"


def _message(cls: type[BaseModel], err: Any, loc: YamlPath) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        return _unknown_key_message(cls, loc)
    if kind == "missing":
        return "required key missing"
    if kind == "literal_error":
        return f"{value!r} is not valid; expected {err['ctx']['expected']}"
    message = err["msg"][0].lower() + err["msg"][1:]
    if kind in _SELF_EXPLAINING or isinstance(value, dict | list):
        return message
    return f"{message} (got {value!r})"


_SELF_EXPLAINING = {"slug", "format", "class_count", "duplicate_class", "duplicate_batch",
                    "model_ref", "reserved_tag", "iterations_or_duration", "unsupported_target",
                    "unsupported_method", "train_device", "train_precision", "weights",
                    "parent_model", "gate_class"}


def _unknown_key_message(cls: type[BaseModel], loc: YamlPath) -> str:
    key = str(loc[-1])
    own = getattr(cls, "params_key", None)
    if len(loc) == 1 and key in PARAM_SECTIONS and own:
        return (f"section {key!r} belongs to experiment_type {PARAM_SECTIONS[key]!r}; "
                f"this {PARAM_SECTIONS[own]!r} scenario takes {own!r}")
    model = _model_at(cls, loc[:-1])
    allowed = list(model.model_fields) if model else []
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; allowed: {', '.join(allowed)}"


def _model_at(cls: type[BaseModel], loc: YamlPath) -> type[BaseModel] | None:
    model: type[BaseModel] | None = cls
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _submodel(field.annotation) if field else None
    return model


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found:
            return found
    return None


def _apply_overrides(doc: YamlDocument, overrides: Sequence[str]) -> list[Problem]:
    problems = []
    for text in overrides:
        origin = f"--set {text}"
        key, sep, raw = text.partition("=")
        parts: YamlPath = tuple(int(p) if p.isdigit() else p for p in key.strip().split("."))
        if not sep or not all(str(p) for p in parts):
            problems.append(Problem(doc.file, None, key, "override must be KEY.PATH=VALUE", origin))
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        target: Any = doc.data
        for i, part in enumerate(parts[:-1]):
            if isinstance(target, dict) and not isinstance(part, int):
                target = target.setdefault(part, {})
            elif isinstance(target, list) and isinstance(part, int) and part < len(target):
                target = target[part]
            else:
                target = None
            if not isinstance(target, dict | list):
                problems.append(Problem(doc.file, None, ".".join(map(str, parts[:i + 1])),
                                        "cannot set a key inside this value", origin))
                break
        else:
            last = parts[-1]
            in_list = isinstance(target, list) and isinstance(last, int) and last < len(target)
            if in_list or (isinstance(target, dict) and isinstance(last, str)):
                target[last] = value
            else:
                problems.append(Problem(doc.file, None, key, "no such list item", origin))
                continue
            doc.sources[parts] = (doc.file, None, origin)
    return problems


def _resolve_site(doc: YamlDocument, path: Path, sites_dir: Path | None) -> list[Problem]:
    site_id = doc.data.get("site")
    if not isinstance(site_id, str):
        return []
    problem = slug_problem(site_id)
    if problem:
        return [_problem(doc, ("site",), f"site id {site_id!r} {problem}")]
    folders = [sites_dir] if sites_dir else [
        d / SITES_DIR for d in (path.absolute().parent, *path.absolute().parents)]
    for folder in folders:
        for suffix in YAML_SUFFIXES:
            candidate = folder / f"{site_id}{suffix}"
            if candidate.is_file():
                doc.graft("site", _load_site_doc(candidate))
                return []
    known_dir = next((f for f in folders if f.is_dir()), None)
    known = sorted(p.stem for p in known_dir.iterdir() if p.suffix in YAML_SUFFIXES) if (
        known_dir) else []
    where = f"in {known_dir}: {', '.join(known) or 'none'}" if known_dir else (
        f"no {SITES_DIR} folder above {path.parent} (use --sites-dir)")
    close = difflib.get_close_matches(site_id, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return [_problem(doc, ("site",), f"unknown site id {site_id!r}{hint}; known sites {where}")]


_site_docs: dict[tuple[Path, int], YamlDocument] = {}


def _load_site_doc(path: Path) -> YamlDocument:
    """Load a site file once per process (a folder of scenarios shares a few sites)."""
    key = (path, path.stat().st_mtime_ns)
    if key not in _site_docs:
        _site_docs[key] = load_yaml(path, str(path))
    cached = _site_docs[key]
    return YamlDocument(cached.file, copy.deepcopy(cached.data), dict(cached.lines))
