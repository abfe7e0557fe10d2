"""The ``pipelines`` fixture: stand-in train and quant pipelines, for lifecycle tests."""

import pytest

import siteml.pipelines.quantize
import siteml.pipelines.train
from tests.scenario.test_runner import fake_quant, fake_train


@pytest.fixture
def pipelines(monkeypatch):
    monkeypatch.setattr(siteml.pipelines.train, "run", fake_train)
    monkeypatch.setattr(siteml.pipelines.quantize, "run", fake_quant)
