"""Keeping credentials out of what siteml prints and records.

A tracking URI may carry ``user:password@``, and the MLflow client takes a password or token
from the environment; MLflow's own error messages repeat the URI as given. Everything siteml
prints as an error, tags on a run or writes as ``error.txt`` goes through ``redact``.
"""

from __future__ import annotations

import os
import re

SECRET_VARIABLES = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                    "MLFLOW_AUTH_ADMIN_PASSWORD", "SITEML_NEW_USER_PASSWORD")
"""Environment variables whose values are secrets wherever they appear."""
MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")


def redact(text: str) -> str:
    """``text`` with the user and password of every URI (``http://u:p@h`` -> ``http://***@h``)
    and the value of every secret environment variable masked."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return text
