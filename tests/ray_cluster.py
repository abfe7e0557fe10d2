"""A local Ray cluster of two one-CPU nodes, ``host:box-a`` and ``host:box-b`` (what CI starts
with ``ray start``), for the tests of ``siteml run --ray``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
NODE = ["--num-cpus", "1", "--disable-usage-stats", "--object-store-memory", "200000000",
        "--block"]


def node_resources(address: str) -> str:
    """What ``ray status`` says of the cluster ('' when it does not answer)."""
    result = subprocess.run([RAY, "status", "--address", address], capture_output=True,
                            text=True, timeout=60)
    return result.stdout if result.returncode == 0 else ""


@contextmanager
def local_cluster(port: int, stop: Callable[[subprocess.Popen], None]) -> Iterator[str]:
    """Start the two nodes in their own process groups; yield the head's address; stop them."""
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = [subprocess.Popen(
        [RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false",
         "--resources", '{"host:box-a": 1}', *NODE], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for(address, "host:box-a")
        started.append(subprocess.Popen(
            [RAY, "start", "--address", address, "--resources", '{"host:box-b": 1}', *NODE],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        _wait_for(address, "host:box-b")
        yield address
    finally:
        for proc in reversed(started):
            stop(proc)


def _wait_for(address: str, resource: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if resource in node_resources(address):
            return
        time.sleep(2)
    raise TimeoutError(f"the Ray node with {resource} did not join {address}")
