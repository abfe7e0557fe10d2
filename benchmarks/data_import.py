"""Import figures (issue 12): siteml's import of a generated 10,000-image COCO set against the
chosen library's own conversion of the same set, and siteml's peak memory.

Each tool runs in a fresh process, rounds interleaved (the machine is shared and noisy):
- siteml: `siteml data import SRC DIR --format coco --group-by 'cam(\\d+)'` (reads the JSON with
  pycocotools, checks every image and box, hard-links the images, writes labels, data.yaml,
  import.json and DIR.dvc);
- globox: `AnnotationSet.from_coco(...).save_yolo_v5(...)`, globox's own COCO -> YOLO conversion
  (labels only: no image checks, no images placed, no splits, no hash);
- Ultralytics: `convert_coco(...)`, the trainer's own converter (labels only), for reference.
Goal: siteml / globox <= 1.2x; siteml's peak RSS well under 1 GiB.

    python benchmarks/data_import.py [--images 10000] [--rounds 3] [--root /tmp/siteml-import-bench]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CATEGORIES = {3: "hardhat", 7: "vest", 11: "person"}


def generate(root: Path, count: int) -> Path:
    """A COCO export: ``count`` 96x64 JPEGs from 20 cameras, 3 boxes each (one spilling over
    the edge), category ids 3, 7, 11."""
    import numpy as np
    from PIL import Image

    path = root / "coco" / "export.json"
    if path.is_file() and len(json.loads(path.read_text())["images"]) == count:
        return path
    shutil.rmtree(root / "coco", ignore_errors=True)
    (root / "coco" / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (64, 96, 3))
    images, annotations = [], []
    for i in range(count):
        name = f"cam{i % 20:02d}_{i:06d}.jpg"
        noise = rng.integers(0, 40, base.shape)
        Image.fromarray((base + noise).clip(0, 255).astype("uint8")).save(
            root / "coco" / "images" / name, quality=85)
        images.append({"id": 1000 + i, "file_name": name, "width": 96, "height": 64})
        for k, cat in enumerate(CATEGORIES):
            x = 80.0 if k == 2 else float(rng.uniform(0, 60))
            annotations.append({"id": len(annotations) + 1, "image_id": 1000 + i,
                                "category_id": cat, "bbox": [x, float(rng.uniform(0, 40)),
                                                             24.0, 20.0],
                                "area": 480.0, "iscrowd": 0})
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": i, "name": n} for i, n in CATEGORIES.items()]}))
    return path


def child(tool: str, src: Path, out: Path) -> None:
    """Run one tool in this (fresh) process; print its seconds and peak RSS as JSON."""
    start = time.perf_counter()
    if tool == "siteml":
        from siteml.cli import app

        try:
            app([  "data", "import", str(src), str(out), "--format", "coco",
                 "--group-by", r"cam(\d+)", "--json"], standalone_mode=False)
        except SystemExit as exc:
            assert not exc.code, exc.code
    elif tool == "globox":
        from globox import AnnotationSet

        AnnotationSet.from_coco(src).save_yolo_v5(
            out, label_to_id={name: k for k, name in enumerate(CATEGORIES.values())})
    else:
        from ultralytics.data.converter import convert_coco

        convert_coco(labels_dir=str(src.parent), save_dir=str(out), use_segments=False,
                     cls91to80=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak}))


def measure(tool: str, src: Path, out: Path) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    out.with_name(out.name + ".dvc").unlink(missing_ok=True)
    done = subprocess.run([sys.executable, __file__, "--child", tool, str(src), str(out)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path("/tmp/siteml-import-bench"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], Path(args.child[1]), Path(args.child[2]))
    src = generate(args.root, args.images)
    tools = ("siteml", "globox", "ultralytics")
    found: dict[str, list[dict[str, float]]] = {t: [] for t in tools}
    for _ in range(args.rounds):
        for tool in tools:
            found[tool].append(measure(tool, src, args.root / f"out-{tool}"))
    seconds = {t: statistics.median(r["seconds"] for r in found[t]) for t in tools}
    peaks = {t: max(r["peak_mb"] for r in found[t]) for t in tools}
    for tool in tools:
        print(f"{tool:12s} {args.images} images: median {seconds[tool]:.2f} s "
              f"({args.images / seconds[tool]:.0f} images/s), peak RSS {peaks[tool]:.0f} MB")
    ratio = seconds["siteml"] / seconds["globox"]
    print(f"ratio siteml / globox conversion: {ratio:.2f}x (goal <= 1.2x: "
          f"{'met' if ratio <= 1.2 else 'NOT met'}); siteml / Ultralytics convert_coco: "
          f"{seconds['siteml'] / seconds['ultralytics']:.2f}x")
    print(f"siteml peak RSS: {peaks['siteml']:.0f} MB (goal well under 1024 MB)")


if __name__ == "__main__":
    main()
