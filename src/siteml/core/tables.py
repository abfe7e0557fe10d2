"""Rows of dicts as CSV or Markdown text, for commands whose output goes into reports."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any


def cell(value: Any) -> str:
    """A value as a table cell: floats to 4 significant digits, None as empty."""
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header line, in the order of ``columns``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[cell(row.get(c)) for c in columns] for row in rows])
    return buffer.getvalue()


def to_markdown(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as a Markdown table, in the order of ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
