"""The ``pipelines`` fixture: stand-in train and quant pipelines, for lifecycle tests; ``chain``:
a batch of them."""

import pytest

import siteml.pipelines.quantize
import siteml.pipelines.train
from tests.scenario.test_runner import as_quant, fake_quant, fake_train


@pytest.fixture
def pipelines(monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    monkeypatch.setattr(siteml.pipelines.quantize, "run", fake_quant)


@pytest.fixture
def chain(site_scenario):
    """A folder with the site's train and quant scenarios; the quant file sorts first."""
    folder = site_scenario.path.parent / "batch"
    folder.mkdir()
    text = site_scenario.path.read_text().replace("path: data", "path: ../data")
    (folder / "b-train.yaml").write_text(text)
    (folder / "a-quant.yaml").write_text(as_quant(text))
    return folder
