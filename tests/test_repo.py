"""The README's set-up commands, CI's reading of them, lint, types and the docs."""

import re
import shlex
import subprocess
import sys

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


def test_mypy_is_clean():
    # what is checked is pyproject.toml's [tool.mypy]; about 9 s cold, 0.5 s with its cache
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lowercase, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_decisions_open_with_an_index_of_every_section():
    text = (REPO / "docs/decisions.md").read_text(encoding="utf-8")
    sections = [h for h in re.findall(r"^#{2,3} (.+)$", text, re.M) if h != "Index"]
    index = text[text.index("## Index"):].split("\n\n")[1]
    linked = re.findall(r"^ *- \[(.+)\]\(#(.+)\)$", index, re.M)
    assert [title for title, _ in linked] == sections
    assert all(anchor == github_anchor(title) for title, anchor in linked)


def test_docs_point_at_nothing_outside_the_repository():
    for document in (REPO / "README.md", REPO / "CHANGELOG.md", *REPO.glob("docs/*.md")):
        text = document.read_text(encoding="utf-8")
        targets = re.findall(r"\]\(([^)#:]+)[)#]", text) + re.findall(r"`(\.\./[^`]+)`", text)
        for target in targets:
            path = (document.parent / target).resolve()
            assert path.is_relative_to(REPO) and path.exists(), f"{document.name}: {target}"
