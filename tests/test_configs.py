"""Every YAML file shipped in the repository is a valid scenario or site file."""

import pytest

from siteml.scenario.factory import is_site_file, load_any
from siteml.scenario.schema import BaseScenario, SiteConfig
from tests.conftest import REPO

SKIP_DIRS = {".git", ".venv", "node_modules", "build", "dist"}
YAML_FILES = sorted(
    p for p in REPO.rglob("*")
    if p.suffix in (".yaml", ".yml") and p.is_file()
    and not SKIP_DIRS.intersection(p.relative_to(REPO).parts)
    and not any(part.startswith(".") for part in p.relative_to(REPO).parts)
    and not p.name.startswith("_")  # a base, checked through the scenarios that extend it
)


def test_repository_ships_sites_and_scenarios():
    sites = [p for p in YAML_FILES if is_site_file(p)]
    customers = {p.parent.name for p in YAML_FILES if p.parent.parent.name == "experiments"}
    assert len(sites) >= 4
    assert {"donghwa_entec", "sampyo"} <= customers


@pytest.mark.parametrize("path", YAML_FILES, ids=[str(p.relative_to(REPO)) for p in YAML_FILES])
def test_yaml_file_is_valid(path):
    loaded = load_any(path)
    assert isinstance(loaded, SiteConfig if is_site_file(path) else BaseScenario)


@pytest.mark.parametrize("customer", ["donghwa_entec", "sampyo"])
def test_each_customer_has_train_quant_and_infer(customer):
    kinds = {load_any(p).experiment_type for p in (REPO / "experiments" / customer).glob("*.yaml")
             if not p.name.startswith("_")}
    assert {"train", "quant", "infer"} <= kinds
