"""The registered models a scenario reads, by role (``ExperimentType.roles``): which model each
role names, the version it resolves to, and the lineage tags a run and its version get from
them. A source left unset reads the site/task model (the version a batch pinned, else its
@champion, else @candidate); an export folder, the version its manifest names. A model that
cannot be read is an error located in the scenario file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siteml.core import keys
from siteml.core.naming import ModelRef, registry_path
from siteml.lifecycle.repository import ExportFolderError, exported_manifest, exported_version
from siteml.scenario.factory import scenario_problem
from siteml.scenario.schema import BaseScenario
from siteml.scenario.types import EXPERIMENT_TYPES, ExperimentType
from siteml.tracking import model_resolve
from siteml.tracking.store import Store


def model_read(scenario: BaseScenario, role: str) -> str | None:
    """The registered model the scenario reads as ``role``, by name (a source left unset
    reads its site/task model, an export folder the one its manifest names); None for a role
    it does not have (or an export folder that names none, refused by ``preflight``)."""
    folder = scenario.model_folder(role)
    if folder is not None:
        with contextlib.suppress(ExportFolderError):
            return exported_manifest(folder)[1]["registered_model"]
        return None
    ref = scenario.model_reference(role)
    if ref is not None:
        return ref.name
    if role == "source" and role in EXPERIMENT_TYPES[scenario.experiment_type].roles:
        return scenario.get_task_model_name()
    return None


def lineage_tags(models: dict[str, Any]) -> dict[str, str]:
    """``{role}.model_name``, ``.model_version``, ``.model_path``, ``.run_id`` of each version
    read, for the run and for the version it registers."""
    return {keys.role_tag(role, name): value for role, version in models.items()
            for name, value in zip(keys.ROLE_FIELDS, (
                version.name, str(version.version),
                f"{registry_path(version.name)}/{version.version}", version.run_id or ""),
                strict=True)}


@dataclass(frozen=True)
class _Locator:
    """Turns a model that cannot be read into an error at a YAML path of the scenario file."""

    path: Path
    overrides: Sequence[str]

    @contextlib.contextmanager
    def at(self, yaml_path: str) -> Iterator[None]:
        try:
            yield
        except (model_resolve.ModelNotFoundError, ExportFolderError) as exc:
            raise scenario_problem(self.path, self.overrides, yaml_path, str(exc)) from None


@dataclass
class ModelsRead:
    """What a scenario reads, by role: the export folders (version folder and manifest, their
    files checked) and the registered model each role names."""

    scenario: BaseScenario
    kind: ExperimentType
    locator: _Locator
    exports: dict[str, tuple[Path, dict[str, Any]]]
    names: dict[str, str | None]
    pending: frozenset[str]

    @classmethod
    def of(cls, path: Path, overrides: Sequence[str], scenario: BaseScenario,
           pending: frozenset[str]) -> ModelsRead:
        """The models ``scenario`` reads; ``pending`` (a batch produces them first) are left
        to check once they exist."""
        kind, locator = EXPERIMENT_TYPES[scenario.experiment_type], _Locator(path, overrides)
        exports = {}
        for role, yaml_path in kind.roles.items():
            folder = scenario.model_folder(role)
            if folder is not None:
                with locator.at(yaml_path):
                    exports[role] = exported_version(folder)
        names = {role: exports[role][1]["registered_model"] if role in exports
                 else model_read(scenario, role) for role in kind.roles}
        return cls(scenario, kind, locator, exports, names, pending)

    @property
    def roles(self) -> list[str]:
        """The roles to resolve: those that name a model that exists already."""
        return [role for role, name in self.names.items() if name not in (None, *self.pending)]

    @property
    def open(self) -> bool:
        """It reads a model still to be produced: its run key is not known yet."""
        return bool(self.pending & set(self.names.values()))

    @property
    def local(self) -> dict[str, Path]:
        """Roles whose files are on disk already (an export folder), instead of downloaded."""
        return {role: folder for role, (folder, _) in self.exports.items()}

    def refuse_missing(self, store: Store) -> None:
        """A store that does not exist yet holds no model to read (and is not created to find
        that out)."""
        needed = [role for role in self.roles if role not in self.kind.optional]
        if not needed or store.exists():
            return
        role = needed[0]
        ref = self._reference(role)
        wanted = ref.path if ref else f"{registry_path(self.names[role])}@champion or @candidate"
        with self.locator.at(self.kind.roles[role]):
            raise model_resolve.ModelNotFoundError(f"no registered model {wanted}: the store "
                                              f"{store.display} has no models yet")

    def resolve(self, client: Any, pinned: Mapping[str, int]) -> dict[str, Any]:
        """The versions read, by role (an optional role's missing model is left out)."""
        found = {role: self._version(client, role, pinned) for role in self.roles}
        for role, made_from in self.kind.made_from.items():
            if role not in found and found.get(made_from) is not None:
                found[role] = self._made_from(client, role, found[made_from])
        return {role: version for role, version in found.items() if version is not None}

    def _made_from(self, client: Any, role: str, version: Any) -> Any:
        """The version ``version`` was made from (its ``source.*`` tags), read as ``role``."""
        name = version.tags.get(keys.SOURCE_MODEL_NAME)
        with self.locator.at(self.kind.roles[role]):
            if not name:
                raise model_resolve.ModelNotFoundError(
                    f"{registry_path(version.name)}/{version.version} records no model it was "
                    "made from: name one")
            return model_resolve.resolve(client, ModelRef(
                name=name, version=int(version.tags[keys.SOURCE_MODEL_VERSION])))

    def _reference(self, role: str) -> ModelRef | None:
        """What the scenario names as ``role``: its reference, or the version an export
        folder holds; None for a source left unset."""
        if role in self.exports:
            manifest = self.exports[role][1]
            return ModelRef(name=manifest["registered_model"], version=int(manifest["version"]))
        return self.scenario.model_reference(role)

    def _version(self, client: Any, role: str, pinned: Mapping[str, int]) -> Any:
        """The version read as ``role``: the one referenced; for a source left unset, the
        version ``pinned`` for its model, else its @champion, else @candidate; None for an
        optional role's missing model."""
        ref, name = self._reference(role), self.names[role]
        if ref is None and name in pinned:
            ref = ModelRef(name=name, version=pinned[name])
        if role in self.kind.optional:
            with contextlib.suppress(model_resolve.ModelNotFoundError):
                return model_resolve.resolve(client, ref)
            return None
        with self.locator.at(self.kind.roles[role]):
            version = model_resolve.resolve(client, ref or model_resolve.default_source(
                client, name))
            if role in self.exports:
                self._check_lineage(role, version)
        return version

    def _check_lineage(self, role: str, version: Any) -> None:
        """An export folder holds this store's version: the run that made it is the same."""
        folder, manifest = self.exports[role]
        if version.run_id != manifest["lineage"]["run_id"]:
            raise ExportFolderError(
                f"{folder} was exported from run {manifest['lineage']['run_id']}, but this "
                f"store's {registry_path(version.name)}/{version.version} comes from run "
                f"{version.run_id}: it is another store's model")
