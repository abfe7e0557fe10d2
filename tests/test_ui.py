"""`siteml ui` links land in MLflow's machine-learning view, checked in a real headless browser:
MLflow 3.17 opens an experiment in its GenAI view unless the URL says otherwise."""

import html
import json
import os
import re
import subprocess
import sys

import pytest

from siteml.tracking.runs import RunRecorder, ensure_experiment, open_client
from siteml.tracking.store import ML_VIEW, resolve_store, ui_links
from tests.conftest import free_port, needs_program, stop_process_group, wait_healthy

CHROMIUM = needs_program("/usr/bin/chromium", "chromium")
pytestmark = pytest.mark.slow

SITE = "acme/busan-plant1/welding"
RUN_NAME = "welding-ppe-v1-train"
DATASET = "welding-ppe-v3"
GENAI = ("detect issues in your traces", "evaluation runs", "latency")
"""Texts of MLflow's GenAI experiment page (its overview of traces). Not "Traces" alone: the
machine-learning view lists a Traces tab too."""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``siteml ui --site SITE --json`` on an embedded store with one run: (url, experiment id,
    what it printed)."""
    folder = tmp_path_factory.mktemp("ui")
    store = resolve_store({"MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"})
    client = open_client(store)
    experiment_id = ensure_experiment(client, store, SITE, {}, "the welding zone")
    run = RunRecorder.start(client, store, experiment_id, RUN_NAME, {}, {})
    run.log_dataset(DATASET, "3f2a9c4e", "data/welding-ppe", "training")
    run.finish("FINISHED")
    port = free_port()
    with open(folder / "ui.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "siteml", "ui", "--port", str(port), "--site", SITE, "--json"],
            cwd=folder, env={**os.environ, "MLFLOW_TRACKING_URI": store.tracking_uri},
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        printed = line = ""
        while line != "}\n":  # print_json's last line, once the UI answers
            line = proc.stdout.readline()
            assert line, f"siteml ui printed {printed!r}; see {folder / 'ui.log'}"
            printed += line
        yield url, experiment_id, json.loads(printed)
    finally:
        stop_process_group(proc)


def page_text(url: str, tmp_path) -> str:
    """The text a user sees at ``url`` once MLflow's single-page app has rendered it."""
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
         "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True).stdout
    dom = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def assert_ml_view(text: str) -> None:
    found = [t for t in GENAI if t in text.lower()]
    assert not found, f"GenAI view ({found}): {text[:800]}"


def test_ui_prints_links_into_the_machine_learning_view(served):
    url, experiment_id, printed = served
    assert printed == {"url": url, "links": ui_links(url, experiment_id)}
    assert printed["links"] == {
        "experiments": f"{url}/#/experiments?{ML_VIEW}",
        "runs": f"{url}/#/experiments/{experiment_id}/runs?{ML_VIEW}",
        "models": f"{url}/#/models?{ML_VIEW}"}


def test_site_link_shows_its_runs_table(served, tmp_path):
    text = page_text(served[2]["links"]["runs"], tmp_path)
    for seen in (SITE, "Run Name", RUN_NAME, "Dataset", DATASET, "Model registry"):
        assert seen in text, f"{seen!r} not on the runs page: {text[:800]}"
    assert_ml_view(text)


def test_experiments_link_lists_the_site_with_the_registry_at_hand(served, tmp_path):
    text = page_text(served[2]["links"]["experiments"], tmp_path)
    for seen in (SITE, "Model registry"):  # the GenAI view's side bar has no registry
        assert seen in text, f"{seen!r} not on the experiments page: {text[:800]}"
    assert_ml_view(text)


def test_models_link_shows_the_registry(served, tmp_path):
    text = page_text(served[2]["links"]["models"], tmp_path)
    for seen in ("Registered Models", "Create model"):
        assert seen in text, f"{seen!r} not on the registry page: {text[:800]}"
    assert_ml_view(text)


def test_without_the_view_the_same_experiment_opens_in_genai(served, tmp_path):
    """The defect the links avoid, and proof that ``assert_ml_view`` would see it."""
    url, experiment_id, _ = served
    text = page_text(f"{url}/#/experiments/{experiment_id}", tmp_path).lower()
    assert all(t in text for t in GENAI), text[:800]
    assert RUN_NAME not in text
