"""Train/val splits: the source's own when it has them, else drawn with a seed; with a group
pattern (a camera id in the file name), drawn over groups so no group is in two splits."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from siteml.core.errors import InvalidInputError


def group_of(pattern: re.Pattern[str], name: str) -> str | None:
    """The group ``pattern`` finds in ``name``: its first capture group, else the whole match."""
    found = pattern.search(name)
    if not found:
        return None
    return found.group(1) if pattern.groups else found.group(0)


def draw_splits(names: Sequence[str], val: float, seed: int,
                group_by: str | None = None) -> dict[str, str]:
    """Name -> ``train`` or ``val``; about ``val`` of the images go to val, whole groups at a time.

    Raises:
        InvalidInputError: a name outside every group, or fewer than two groups to split.
    """
    pattern = compile_pattern(group_by) if group_by else None
    groups: dict[str, list[str]] = defaultdict(list)
    outside = []
    for name in names:
        key = group_of(pattern, name) if pattern else name
        if key is None:
            outside.append(name)
        else:
            groups[key].append(name)
    if outside:
        raise InvalidInputError(f"--group-by {group_by!r} finds no group in {len(outside)} "
                                f"image names, e.g. {', '.join(outside[:3])}")
    if len(groups) < 2:
        raise InvalidInputError(f"{len(groups)} group(s) found"
                                f"{f' by --group-by {group_by!r}' if group_by else ''}: "
                                "need at least two to draw train and val")
    return draw_groups(groups, val, seed)


def draw_groups(groups: dict[str, list[str]], val: float, seed: int) -> dict[str, str]:
    """Name -> ``train`` or ``val``, whole groups at a time: the first group drawn goes to val,
    then more while val holds less than ``val`` of the names; the last group stays in train
    (when there are two or more)."""
    order = sorted(groups)
    np.random.default_rng(seed).shuffle(order)
    wanted = val * sum(map(len, groups.values()))
    taken = 0
    splits = {}
    for index, key in enumerate(order):
        last = index == len(order) - 1
        split = "val" if (taken < wanted and not last) or index == 0 else "train"
        taken += len(groups[key]) if split == "val" else 0
        splits.update(dict.fromkeys(groups[key], split))
    return splits


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``--group-by``'s regular expression.

    Raises:
        InvalidInputError: naming the option.
    """
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInputError(f"--group-by {pattern!r}: not a regular expression ({exc})") \
            from None
