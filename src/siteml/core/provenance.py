"""Where a run came from: the host it ran on and the git state of its scenario file.

Only facts, never environment variables or credentials: nothing here reads ``os.environ``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

KEY_PACKAGES = ("mlflow", "pydantic", "ultralytics", "numpy")
"""Packages every run records the version of, beside those of the runtimes."""
INFERENCE_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                       "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd")


def _cpuinfo(field: str) -> str | None:
    """The first value of ``field`` in ``/proc/cpuinfo`` (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def instruction_set(flags: str | None) -> str | None:
    """The widest INT8-relevant instruction set in an ``env.cpu_flags`` value, in words:
    ``AMX``, ``AVX-512+VNNI``, ``AVX-512``, ``AVX2+VNNI``, ``AVX2``, ``NEON`` or ``none``
    (None when the flags were not recorded): a speedup is read against it."""
    if flags is None:
        return None
    present = set(flags.split(","))
    for needed, name in ((("amx_int8",), "AMX"), (("avx512f", "avx512_vnni"), "AVX-512+VNNI"),
                         (("avx512f",), "AVX-512"), (("avx2", "avx_vnni"), "AVX2+VNNI"),
                         (("avx2",), "AVX2"), (("asimd",), "NEON"), (("neon",), "NEON")):
        if present.issuperset(needed):
            return name
    return "none"


def cpu_flags() -> dict[str, str]:
    """``env.cpu_flags``: the CPU features inference speed hangs on (AVX-512, VNNI, AMX ...)."""
    present = set((_cpuinfo("flags") or _cpuinfo("Features") or "").split())
    return {"env.cpu_flags": ",".join(f for f in INFERENCE_CPU_FLAGS if f in present) or "none"}


def _memory_gib() -> str:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f}"
    except (ValueError, OSError, AttributeError):
        return "unknown"


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``names`` (without importing them); missing ones are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def host_tags(runtimes: tuple[str, ...] = ()) -> dict[str, str]:
    """``env.*`` tags: OS, CPU, cores, memory, Python and the versions of key packages and of
    the ``runtimes`` packages."""
    tags = {
        "env.os": platform.platform(),
        "env.hostname": platform.node(),
        "env.cpu": _cpu_model(),
        "env.cpu_cores": str(os.cpu_count() or 0),
        "env.memory_gib": _memory_gib(),
        "env.python": platform.python_version(),
    }
    tags.update({f"env.{name}": version
                 for name, version in package_versions((*KEY_PACKAGES, *runtimes)).items()})
    return tags


def git_tags(path: Path) -> dict[str, str]:
    """``git.commit``, ``git.branch``, ``git.dirty`` of the repository holding ``path``, if any."""
    folder = path if path.is_dir() else path.parent

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                    text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git.commit": commit,
        "git.branch": git("rev-parse", "--abbrev-ref", "HEAD") or "",
        "git.dirty": "unknown" if status is None else str(bool(status)).lower(),
        "mlflow.source.git.commit": commit,
    }
