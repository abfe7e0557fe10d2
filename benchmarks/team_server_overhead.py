"""What auth and workspaces cost a user: `siteml run` (a real training) and `siteml runs` on a
team server (`siteml server start`: basic-auth, workspaces, an editor's credentials) against the
same on a plain `mlflow server`, timed interleaved in one run (the machine is shared and
noisy). Both servers are sqlite-backed, one worker, on this machine. Goal (issue 14): <= 1.1.

    python benchmarks/team_server_overhead.py [--rounds 2] [--epochs 3] [--images 64] [--imgsz 96]
"""

from __future__ import annotations

import argparse
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


def siteml(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "siteml", *args], env=env, input=stdin, text=True,
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=64, help="train images (val: a quarter)")
    parser.add_argument("--imgsz", type=int, default=96, help="a multiple of 32")
    args = parser.parse_args()
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
            runs: dict[str, list[float]] = {name: [] for name in envs}
            reads: dict[str, list[float]] = {name: [] for name in envs}
            command = [sys.executable, "-m", "siteml"]
            for _ in range(args.rounds):
                for name, env in envs.items():
                    runs[name].append(wall([*command, "run", str(scenario), "--rerun"], env))
                    reads[name].append(wall([*command, "runs", "--json"], env))
        finally:
            for proc in servers:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=60)
    print(f"sizes: {args.images} train + {args.images // 4} val images at {args.imgsz} px, "
          f"{args.epochs} epochs, {args.rounds} round(s)")
    print("siteml run (a fresh process, training and registering):")
    run_medians = report(runs)
    print("siteml runs --json (a fresh process):")
    read_medians = report(reads)
    verdict("run: team server / plain server", run_medians["team server"]
            / run_medians["plain server"], 1.1)
    verdict("runs: team server / plain server", read_medians["team server"]
            / read_medians["plain server"], 1.1)


if __name__ == "__main__":
    main()
