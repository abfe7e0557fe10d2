"""Shared fixtures: a valid scenario text to mutate, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]

VALID_SCENARIO = """\
name: welding-ppe
version: v2
experiment_type: train
site:
  customer: donghwa-entec
  region: busan
  plant: plant1
  zone: welding
task:
  type: ppe
  classes: [helmet, vest, person]
model:
  architecture: yolov11l
  input_size: 640
  num_classes: 3
environment:
  device: cpu
  seed: 42
dataset:
  version: v3
  dvc_hash: 3f2a9c4e1b7d8a6f5e4c3b2a1d0e9f8c.dir
  path: data/welding-ppe
  image_count: 120
training:
  epochs: 5
  batch: 8
"""


def with_site(text: str, site: str) -> str:
    """Replace the inline ``site:`` mapping of a scenario text by ``site: <site>``."""
    return text[: text.index("site:")] + f"site: {site}\n" + text[text.index("task:"):]


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` in ``text``."""
    return text[: text.index(needle)].count("\n") + 1


@pytest.fixture
def cli():
    """Invoke the siteml CLI in-process; returns (exit code, stdout, stderr)."""
    from siteml.cli import app

    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.fixture
def write(tmp_path):
    """Write text to a file under tmp_path and return its path."""

    def _write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write
