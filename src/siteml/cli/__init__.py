"""The ``siteml`` command line: parses arguments, calls the lifecycle and the readers, prints.

One module per command group (``scenarios``, ``registry``, ``data``, ``sites``); ``app`` holds
the shared options and error reporting, ``render`` the tables.
"""

from siteml.cli import (  # noqa: F401 - they register commands
    access,
    data,
    edge,
    fleet,
    label,
    registry,
    scenarios,
    server,
    sites,
)
from siteml.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()
