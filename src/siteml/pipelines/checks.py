"""Pre-run checks the pipelines share: is a runtime installed, and does this machine have the
scenario's device for it. Each returns None or the YAML path to blame and why."""

from __future__ import annotations

from siteml.backends import registry as backends
from siteml.scenario.schema import BaseScenario

Problem = tuple[str, str] | None
"""None, or (YAML path, message) of a problem located in the scenario file."""


def runtime_ready(scenario: BaseScenario, backend: str, int8: bool = False) -> Problem:
    """Check that ``backend`` (and its INT8 toolkit) is installed and that this machine has the
    scenario's device for it (a device the runtime does not name means the CPU).

    Raises:
        MissingExtraError: naming the extra that installs what is missing.
    """
    backends.check_installed_for(backend, int8)
    missing = backends.missing_device(backend, scenario.environment.device)
    return ("environment.device", missing) if missing else None
