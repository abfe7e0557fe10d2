"""The naming convention: site paths, registered model names and model references.

A registered model is addressed by people as a *registry path*
(``donghwa-entec/busan-plant1/welding/ppe__openvino_int8``) and stored in MLflow under the same
path with dots (``donghwa-entec.busan-plant1.welding.ppe__openvino_int8``), because MLflow
forbids ``/`` in model names. Name parts are lowercase slugs, so the two spellings map one to one.
Pure: no I/O and no MLflow import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from siteml.core.tasks import TASK_TYPES

SLUG_MAX = 63
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
VARIANT_RE = re.compile(r"[a-z0-9]+_[a-z0-9]+")
ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]{0,254}")
MODELS_SCHEME = "models:/"
CANDIDATE = "candidate"
"""The alias a fresh version gets."""
CHAMPION = "champion"
"""The alias of the version in service."""


def slug_problem(value: str) -> str | None:
    """Return why ``value`` is not a valid name part, or None when it is one."""
    if not value:
        return "must not be empty"
    if len(value) > SLUG_MAX:
        return f"is {len(value)} characters long; at most {SLUG_MAX} are allowed"
    if not SLUG_RE.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(r"[a-z0-9-]", c)})
        shown = ", ".join(repr(c) if c.isascii() and c.isprintable() and c != " "
                          else f"U+{ord(c):04X}" for c in bad)
        why = f" (not allowed: {shown})" if bad else " (must start with a letter or digit)"
        return f"must be a lowercase slug of a-z, 0-9 and '-'{why}"
    return None


RESERVED_CUSTOMERS = frozenset({"workspaces", "api", "ajax-api", "static-files", "default"})
"""Names MLflow reserves for workspaces (its routes, and ``default`` for what has none): a
customer is a workspace on a team server."""
CUSTOMER_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def customer_problem(value: str) -> str | None:
    """Why ``value`` cannot be a customer slug, or None: a customer is a slug that can also
    name an MLflow workspace (2-63 characters, no '-' at either end, not a reserved name)."""
    problem = slug_problem(value)
    if problem:
        return problem
    if len(value) < 2:
        return "is 1 character long; a customer needs at least 2 (it names a workspace)"
    if not CUSTOMER_RE.fullmatch(value):
        return "must not end with '-' (it names a workspace)"
    if value in RESERVED_CUSTOMERS:
        return "is a name MLflow reserves for its workspaces; choose another"
    return None


def site_path(customer: str, region: str, plant: str, zone: str) -> str:
    """The site's path, which is also its MLflow experiment name."""
    return f"{customer}/{region}-{plant}/{zone}"


def customer_of(site: str) -> str:
    """The customer slug of a site path."""
    return site.split("/", 1)[0]


def registered_model_name(site: str, task: str, variant: str | None = None) -> str:
    """MLflow registered model name for a site path, task and optional variant.

    >>> registered_model_name("donghwa-entec/busan-plant1/welding", "ppe", "openvino_int8")
    'donghwa-entec.busan-plant1.welding.ppe__openvino_int8'
    """
    leaf = f"{task}__{variant}" if variant else task
    return f"{site.replace('/', '.')}.{leaf}"


def registry_path(name: str) -> str:
    """The slash spelling of an MLflow registered model name."""
    return name.replace(".", "/")


@dataclass(frozen=True)
class ModelRef:
    """A reference to one registered model version, by alias or by number.

    Attributes:
        name: MLflow registered model name (dotted).
        alias: Alias such as ``champion`` or ``candidate``, when addressed by alias.
        version: Version number, when addressed by number.
    """

    name: str
    alias: str | None = None
    version: int | None = None

    @property
    def site(self) -> str:
        """Site path (``customer/region-plant/zone``)."""
        return registry_path(self.name.rsplit(".", 1)[0])

    @property
    def task(self) -> str:
        return self.name.rsplit(".", 1)[1].split("__", 1)[0]

    @property
    def variant(self) -> str | None:
        parts = self.name.rsplit(".", 1)[1].split("__", 1)
        return parts[1] if len(parts) == 2 else None

    @property
    def uri(self) -> str:
        """The ``models:/`` URI that MLflow clients accept."""
        selector = f"@{self.alias}" if self.alias else f"/{self.version}"
        return f"{MODELS_SCHEME}{self.name}{selector}"

    @property
    def path(self) -> str:
        """The slash spelling people type (``site/task@alias`` or ``site/task/3``)."""
        selector = f"@{self.alias}" if self.alias else f"/{self.version}"
        return f"{registry_path(self.name)}{selector}"

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse any spelling of a model reference.

        Accepted: ``site/task@alias``, ``site/task/3``, ``site/task__variant@alias``, the same
        with dots (``customer.region-plant.zone.task@alias``), and ``models:/<dotted>@alias``
        or ``models:/<dotted>/3``.

        Raises:
            ValueError: with a message that says which part is wrong.
        """
        body = text.strip()
        body = body.removeprefix(MODELS_SCHEME)
        alias = version = None
        if "@" in body:
            body, alias = body.rsplit("@", 1)
            if not ALIAS_RE.fullmatch(alias) or re.fullmatch(r"v\d+|latest", alias):
                raise ValueError(f"alias {alias!r} is not valid: use lowercase letters, digits, "
                                 "'_' and '-', starting with a letter (not 'latest' or 'vN')")
        elif "/" in body and body.rsplit("/", 1)[1].isdigit():
            body, number = body.rsplit("/", 1)
            version = int(number)
            if version < 1:
                raise ValueError("model versions start at 1")
        else:
            raise ValueError(f"{text!r} names no version: add '@<alias>' (e.g. @champion) "
                             "or '/<version>' (e.g. /3)")
        if "/" in body and "." in body:
            raise ValueError(f"{text!r} mixes '/' and '.' separators; use one spelling")
        parts = body.split("/") if "/" in body else body.split(".")
        if len(parts) != 4:
            raise ValueError(f"{text!r} must name customer/region-plant/zone/task, "
                             f"got {len(parts)} part(s)")
        *site_parts, leaf = parts
        for label, part in zip(("customer", "region-plant", "zone"), site_parts, strict=True):
            problem = (customer_problem if label == "customer" else slug_problem)(part)
            if problem:
                raise ValueError(f"{label} {part!r} {problem}")
        task, _, variant = leaf.partition("__")
        if task not in TASK_TYPES:
            raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASK_TYPES)}")
        if variant and not VARIANT_RE.fullmatch(variant):
            raise ValueError(f"variant {variant!r} must look like '<backend>_<precision>', "
                             "e.g. openvino_int8")
        if leaf.endswith("__"):
            raise ValueError(f"{text!r} ends with '__' but names no variant")
        name = registered_model_name("/".join(site_parts), task, variant or None)
        return cls(name=name, alias=alias, version=version)
