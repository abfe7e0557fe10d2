"""The detection tasks siteml knows, with each one's usual classes: the one list of task types.

The schema's ``task.type`` choices, model references, ``--task`` options and the synthetic data
generator all read ``TASK_CLASSES``. Pure: imports nothing.
"""

from __future__ import annotations

TASK_CLASSES: dict[str, tuple[str, ...]] = {
    "ppe": ("helmet", "vest", "person"),
    "fall": ("person-standing", "person-fallen"),
    "fire": ("fire", "smoke"),
    "collision": ("forklift", "person", "pallet"),
    "stuck": ("stone", "blocked-chute", "belt-spill"),
}
"""Task type -> its usual class names, in label-index order (a scenario may name others)."""
TASK_TYPES = tuple(TASK_CLASSES)
