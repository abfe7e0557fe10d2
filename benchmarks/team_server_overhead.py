"""What auth and workspaces cost a user: `siteml run` (a real training) and `siteml runs` on a
team server (`siteml server start`: basic-auth, workspaces, an editor's credentials) against the
same on a plain `mlflow server`, timed interleaved in one run (the machine is shared and
noisy). Both servers are sqlite-backed, one worker, on this machine. Goal (issue 14): <= 1.1.

Each command is a fresh process that also times its own HTTP calls to the server. Two trainings
of the same scenario differ by more than auth and workspaces can cost (measured: 38-59 s for
the same run), so besides the wall-clock ratio the script prints the one the goal is judged
on: the plain run's wall clock plus the extra time the team server took to answer the same
calls, over the plain run's wall clock.

    python benchmarks/team_server_overhead.py [--rounds 3] [--epochs 3] [--images 64] [--imgsz 96]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from timing import report, verdict, wall

REPO = Path(__file__).resolve().parents[1]

CUSTOMER = "bench-customer"
NO_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd: list[str], env: dict[str, str], url: str) -> subprocess.Popen:
    """A server in its own process group, once its /health answers."""
    proc = subprocess.Popen(cmd, env={**env, **NO_JOBS}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}") from None
            time.sleep(0.5)
    raise TimeoutError(url)


def timed_siteml(args: list[str], out: str) -> None:
    """Run siteml's CLI in this process, timing every HTTP call it makes; write the wall clock,
    the number of requests and the seconds spent in them to `out` (JSON)."""
    import requests

    from siteml.cli import main as siteml_main

    spent = {"requests": 0, "http_s": 0.0}
    send = requests.Session.send

    def timed_send(session, request, **kwargs):
        start = time.perf_counter()
        try:
            return send(session, request, **kwargs)
        finally:
            spent["requests"] += 1
            spent["http_s"] += time.perf_counter() - start

    requests.Session.send = timed_send
    sys.argv = ["siteml", *args]
    start = time.perf_counter()
    try:
        siteml_main()
    except SystemExit as exc:
        if exc.code:
            raise
    Path(out).write_text(json.dumps({**spent, "wall_s": time.perf_counter() - start}))


def timed(env: dict[str, str], out: Path, *args: str, stand_in: bool = False) -> dict[str, float]:
    """A fresh process running siteml with its HTTP calls timed: its wall clock (start to
    exit), requests and seconds in HTTP."""
    cmd = [sys.executable, __file__, *(["--stand-in"] if stand_in else []), "--timed-child",
           str(out), "--", *args]
    seconds = wall(cmd, env)
    return {**json.loads(out.read_text()), "wall_s": seconds}


def server_share(label: str, series: dict[str, list[dict[str, float]]]) -> None:
    """Print wall clock, requests and HTTP time per server; judge the team server's extra
    HTTP time against the plain server's wall clock."""
    print(f"{label} (a fresh process):")
    walls = report({name: [m["wall_s"] for m in runs] for name, runs in series.items()})
    print(f"{label}, seconds in HTTP calls to the server:")
    http = report({name: [m["http_s"] for m in runs] for name, runs in series.items()})
    for name, runs in series.items():
        print(f"  {name}: {runs[0]['requests']} requests per command")
    print(f"{label}: wall clock, team / plain (training noise included): "
          f"{walls['team server'] / walls['plain server']:.3f}")
    share = (walls["plain server"] + http["team server"] - http["plain server"]) \
        / walls["plain server"]
    verdict(f"{label}: team server / plain server", share, 1.1)


def siteml(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "siteml", *args], env=env, input=stdin, text=True,
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=64, help="train images (val: a quarter)")
    parser.add_argument("--imgsz", type=int, default=96, help="a multiple of 32")
    parser.add_argument("--stand-in", action="store_true", help="a stand-in training that "
                        "logs its epochs at once (a smoke test: the figure needs a real one)")
    parser.add_argument("--timed-child", help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timed_child:
        if args.stand_in:
            sys.path.insert(0, str(REPO))
            from tests.standins import use

            use("epochs")
        timed_siteml(args.child_args, args.timed_child)
        return
    from siteml.data.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        admin_pw, editor_pw = secrets.token_hex(12), secrets.token_hex(12)
        plain_url, team_url = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
        servers = [
            start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                   f"sqlite:///{root}/plain.db", "--artifacts-destination", str(root / "pa"),
                   "--port", plain_url.rsplit(":", 1)[1], "--workers", "1"], base, plain_url),
            start([sys.executable, "-m", "siteml", "server", "start", "--backend-store-uri",
                   f"sqlite:///{root}/team.db", "--artifacts-destination", str(root / "ta"),
                   "--state-dir", str(root / "state"), "--port", team_url.rsplit(":", 1)[1],
                   "--workers", "1"], {**base, "MLFLOW_AUTH_ADMIN_PASSWORD": admin_pw},
                  team_url)]
        try:
            admin = {**base, "MLFLOW_TRACKING_URI": team_url,
                     "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": admin_pw}
            siteml(admin, "access", "add-user", "editor", "--password-stdin", stdin=editor_pw)
            siteml(admin, "access", "grant", "editor", "editor", CUSTOMER)
            envs = {"plain server": {**base, "MLFLOW_TRACKING_URI": plain_url},
                    "team server": {**base, "MLFLOW_TRACKING_URI": team_url,
                                    "MLFLOW_TRACKING_USERNAME": "editor",
                                    "MLFLOW_TRACKING_PASSWORD": editor_pw}}
            data = root / "data"
            md5 = synthesize(data, ["helmet", "vest", "person"],
                             {"train": args.images, "val": args.images // 4},
                             imgsz=args.imgsz, seed=0).md5
            scenario = root / "train.yaml"
            scenario.write_text(yaml.safe_dump({
                "name": "bench", "version": "v1", "experiment_type": "train",
                "site": {"customer": CUSTOMER, "region": "ulsan", "plant": "plant1",
                         "zone": "bench"},
                "task": {"type": "ppe", "classes": ["helmet", "vest", "person"]},
                "model": {"architecture": "yolov11n", "input_size": args.imgsz,
                          "num_classes": 3},
                "environment": {"device": "cpu", "seed": 0},
                "dataset": {"version": "bench", "dvc_hash": md5, "path": str(data),
                            "image_count": args.images + args.images // 4},
                "training": {"epochs": args.epochs, "batch": 16, "workers": 0}}))
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in envs}
            reads: dict[str, list[dict[str, float]]] = {name: [] for name in envs}
            out = root / "timed.json"
            for _ in range(args.rounds):
                for name, env in envs.items():
                    runs[name].append(timed(env, out, "run", str(scenario), "--rerun",
                                            stand_in=args.stand_in))
                    reads[name].append(timed(env, out, "runs", "--json"))
        finally:
            for proc in servers:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=60)
    print(f"sizes: {args.images} train + {args.images // 4} val images at {args.imgsz} px, "
          f"{args.epochs} epochs, {args.rounds} round(s)")
    server_share("run", runs)
    server_share("runs", reads)


if __name__ == "__main__":
    main()
