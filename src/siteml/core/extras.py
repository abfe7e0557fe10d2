"""Optional dependencies, imported only by the pipelines that need them."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from siteml.core.errors import SitemlError


class MissingExtraError(SitemlError):
    """A pipeline needs an optional dependency that is not installed (exit 1)."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or say which siteml extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{module} is not installed ({exc}); install it with: "
                                f"pip install 'siteml[{extra}]'") from None


def check_installed(module: str, extra: str) -> None:
    """Say which siteml extra installs ``module`` if it is missing, without importing it."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or blocked in sys.modules
        found = False
    if not found:
        raise MissingExtraError(f"{module} is not installed; install it with: "
                                f"pip install 'siteml[{extra}]'")
