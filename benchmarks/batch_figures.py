"""Issue 15's figures, measured side by side in one run on this machine (shared and noisy):

- batch overhead: the tiny demo site (train, quant, two benchmarks) as one local batch
  (`siteml run FOLDER`) against the same four scenarios run one `siteml run` each, each on a
  fresh embedded store, rounds interleaved. Goal <= 1.05.
- Ray overhead per scenario: N short benchmark scenarios as one batch on a local Ray cluster,
  all pinned to one node (so they run one at a time, as locally), against the local executor;
  both log to one plain `mlflow server`. Goal <= 2 s per scenario.
- parallel speedup: the same N single-thread benchmarks on two one-CPU nodes against one.
  Goal >= 1.7.

The Ray cluster is two `ray start --block` nodes (host:box-a, host:box-b) started here unless
--ray-address names one with those resources.

    python benchmarks/batch_figures.py [--rounds 2] [--scenarios 8] [--epochs 2] [--images 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml
from team_server_overhead import free_port, start
from timing import report, verdict, wall

REPO = Path(__file__).resolve().parents[1]


def demo(folder: Path, epochs: int, images: int) -> list[Path]:
    from siteml.lifecycle.demo import DemoSize, prepare

    return prepare(folder, DemoSize(epochs=epochs, train_images=images,
                                    val_images=max(images // 2, 4), imgsz=64))


def short_benchmarks(template: Path, name: str, count: int, first: int,
                     host: str | None) -> Path:
    """``count`` single-thread benchmarks of the demo's trained model (versions ``first``
    on: the version names the run), in a new folder of the demo (its site file is found
    upward)."""
    folder = template.parents[2] / name
    folder.mkdir(parents=True)
    data = yaml.safe_load(template.read_text())
    data["dataset"]["path"] = str((template.parent / data["dataset"]["path"]).resolve())
    data["benchmark"].update(warmup=5, iterations=30, measure_accuracy=False, num_threads=1)
    data["environment"].pop("host", None)
    if host:
        data["environment"]["host"] = host
    for i in range(count):
        data.update(name=f"short-{i}", version=f"v{first + i}")
        (folder / f"short-{i}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=16, help="train images (val: half)")
    parser.add_argument("--ray-address", help="a cluster with host:box-a and host:box-b")
    args = parser.parse_args()
    siteml = [sys.executable, "-m", "siteml", "run"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        batch: dict[str, list[float]] = {"batch": [], "one by one": []}
        for n in range(args.rounds):
            for name in batch:
                folder = root / f"demo-{n}-{name.replace(' ', '-')}"
                paths = demo(folder, args.epochs, args.images)  # its own store, in the folder
                if name == "batch":
                    batch[name].append(wall([*siteml, str(paths[0].parent)], base, folder))
                else:
                    batch[name].append(sum(wall([*siteml, str(p)], base, folder)
                                           for p in paths))
        print(f"the demo site ({args.epochs} epochs, {args.images} train images at 64 px), "
              "4 scenarios on a fresh embedded store:")
        medians = report(batch)
        verdict("batch overhead: one batch / one by one", medians["batch"]
                / medians["one by one"], 1.05)
        ray_figures(args, root, siteml, base)


def ray_figures(args: argparse.Namespace, root: Path, siteml: list[str],
                base: dict[str, str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    server = start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                    f"sqlite:///{root}/server.db", "--artifacts-destination", str(root / "art"),
                    "--port", url.rsplit(":", 1)[1], "--workers", "1"], base, url)
    try:
        env = {**base, "MLFLOW_TRACKING_URI": url}
        paths = demo(root / "ray-demo", args.epochs, args.images)
        wall([*siteml, str(paths[0]), str(paths[1])], env)  # the model the benchmarks read
        if args.ray_address:
            ray_rounds(args, siteml, env, paths[2], args.ray_address)
            return
        sys.path.insert(0, str(REPO))
        from tests.conftest import stop_process_group
        from tests.ray_cluster import local_cluster

        with local_cluster(free_port(), stop_process_group) as address:
            ray_rounds(args, siteml, env, paths[2], address)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


def ray_rounds(args: argparse.Namespace, siteml: list[str], env: dict[str, str],
               template: Path, address: str) -> None:
    modes = {"local executor": (None, []), "Ray, one node": ("box-a", ["--ray"]),
             "Ray, two nodes": (None, ["--ray"])}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for n in range(args.rounds):
        for i, (mode, (host, flags)) in enumerate(modes.items()):
            folder = short_benchmarks(template, f"short-{n}-{i}", args.scenarios,
                                      100 + (n * len(modes) + i) * args.scenarios, host)
            times[mode].append(wall([*siteml, str(folder), *flags],
                                    {**env, "RAY_ADDRESS": address}))
    print(f"{args.scenarios} short single-thread benchmarks, one plain mlflow server:")
    medians = report(times)
    per_scenario = (medians["Ray, one node"] - medians["local executor"]) / args.scenarios
    print(f"Ray overhead per scenario (one node - local) / {args.scenarios}: "
          f"{per_scenario:.2f} s  goal <= 2 -> {'met' if per_scenario <= 2 else 'NOT met'}")
    print(f"parallel speedup: one node / two nodes: "
          f"{medians['Ray, one node'] / medians['Ray, two nodes']:.3f}  goal >= 1.7 -> "
          f"{'met' if medians['Ray, one node'] / medians['Ray, two nodes'] >= 1.7 else 'NOT met'}")


if __name__ == "__main__":
    main()
