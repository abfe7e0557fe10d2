"""The ``.pt`` weights inside a registered PyTorch model (a pyfunc folder downloaded from the
registry), copied where a run may write beside them (exports, training)."""

from __future__ import annotations

import shutil
from pathlib import Path


def pt_weights(model_folder: Path, target_dir: Path) -> Path:
    """Copy the model's ``.pt`` into ``target_dir``; return the copy."""
    found = sorted(model_folder.rglob("*.pt"))
    if not found:
        raise FileNotFoundError(f"the registered model at {model_folder} holds no .pt weights")
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / found[0].name
    shutil.copy2(found[0], target)
    return target
