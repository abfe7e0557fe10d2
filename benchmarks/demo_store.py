"""Shared by the quantization and benchmark figure scripts: the demo store they measure."""

from __future__ import annotations

from pathlib import Path

import yaml

DEFAULT_DIR = Path("/tmp/siteml-quant-bench")


def demo_folder(path: Path) -> Path:
    """``path`` as an absolute folder holding a finished `siteml demo` (run now if it is not)."""
    folder = path.absolute()
    if not (folder / "mlflow.db").exists():
        from siteml.demo import run_demo

        run_demo(folder)
    return folder


def write_scenario(folder: Path, stem: str, changes: dict) -> Path:
    """A scenario beside the demo's (same site, task, model, dataset), with ``changes`` over
    the demo's quant scenario minus its ``quantization`` section; return its path."""
    template_path = next((folder / "experiments").rglob("*-quant-v1.yaml"))
    template = yaml.safe_load(template_path.read_text())
    template.pop("quantization")
    path = template_path.with_name(f"{stem}.yaml")
    path.write_text(yaml.safe_dump({**template, **changes}, sort_keys=False))
    return path
