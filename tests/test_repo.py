"""The README's set-up commands, CI's reading of them, and lint."""

import shlex
import subprocess

from tests.conftest import REPO


def readme_command(label: str) -> str:
    """Run .ci/run's own README reader for the command labelled ``# label``."""
    script = (REPO / ".ci/run").read_text()
    function = script[script.index("readme_command() {"): script.index("\n}\n") + 3]
    result = subprocess.run(["bash", "-c", f"{function}\nreadme_command {label}"], cwd=REPO,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_ci_reads_the_readme_commands():
    assert readme_command("install") == 'pip install -e ".[all]"'
    assert readme_command("test") == "python -m pytest"
    assert readme_command("main").startswith("siteml ")


def test_readme_main_job_is_the_demo(cli):
    # the demo itself runs in tests/test_demo.py (with fewer epochs than the README's 15)
    args = shlex.split(readme_command("main"))[1:]
    assert args == ["demo"]
    code, out, err = cli(*args, "--help")
    assert code == 0, err
    assert "--epochs" in out


def test_ruff_is_clean():
    result = subprocess.run(["ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
