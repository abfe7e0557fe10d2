"""The shape of the code: import layers, the backend and experiment-type registries, and pure
modules that need no optional extra."""

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from siteml.backends import registry as backends
from siteml.core.errors import SitemlError
from siteml.scenario.schema import BaseScenario
from siteml.scenario.types import EXPERIMENT_TYPES, SCENARIO_TYPES
from tests.conftest import REPO

HEAVY = ("torch", "torchvision", "ultralytics", "openvino", "nncf", "onnx", "onnxruntime",
         "onnxslim", "cv2")


def test_import_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def layer_table(markdown: str) -> list[list[str]]:
    """The packages named in the first column of a document's ``| layer | holds |`` table."""
    table = markdown[markdown.index("| layer | holds |"):].split("\n\n")[0]
    return [re.findall(r"`(\w+)`", row.split(" | ")[0]) for row in table.splitlines()[2:]]


@pytest.mark.parametrize("document", ["README.md", "docs/architecture.md"])
def test_documented_layers_are_the_import_contracts(document):
    text = (REPO / document).read_text(encoding="utf-8")
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in contracts["contracts"] if c["type"] == "layers"]
    assert layer_table(text) == [[p.removeprefix("siteml.") for p in layer.split(" | ")]
                                 for layer in layers]
    packages = {p for row in layer_table(text) for p in row}
    for contract in (c for c in contracts["contracts"] if c["type"] == "forbidden"):
        [allowed] = packages - {m.removeprefix("siteml.") for m in contract["source_modules"]}
        assert f"Only `{allowed}` imports" in text, contract["name"]
        assert all(f"`{m}`" in text for m in contract["forbidden_modules"]), contract["name"]
        for ignored in contract.get("ignore_imports", []):
            importer = ignored.split(" -> ")[0].removeprefix("siteml.").replace(".", "/")
            assert f"`{importer}.py`" in text, ignored


def test_pure_modules_and_their_tests_need_no_optional_extra():
    # the core, the schema and the registries import with every extra's package blocked
    code = (f"import sys; sys.modules.update(dict.fromkeys({HEAVY!r})); import pytest; "
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/core', "
            "'tests/scenario/test_schema.py', 'tests/test_architecture.py::"
            "test_every_backend_is_one_complete_record']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_every_backend_is_one_complete_record():
    assert list(backends.BACKENDS) == list(backends.BACKEND_MODULES)
    for name, backend in backends.BACKENDS.items():
        assert backend.name == name
        assert backend.modules and backend.packages and backend.extra in ("train", "quantize")
        assert backend.accepts("cpu") or backend.accepts("CPU")
        assert bool(backend.precisions) == (backend.make_variant is not None)
        assert set(backend.also_runs) <= set(backends.BACKENDS)
    assert backends.SOURCE_BACKEND in backends.BACKENDS
    assert backends.quantizing() == ("onnxruntime", "openvino")


def test_unknown_backend_is_an_error_listing_the_known_ones():
    with pytest.raises(SitemlError, match="unknown backend 'tensorrt'; known: pytorch, "
                                          "onnxruntime, openvino"):
        backends.get("tensorrt")
    with pytest.raises(SitemlError, match="unknown backend"):
        backends.missing_device("tensorrt", "cuda:0")
    with pytest.raises(ValueError, match="no backend runs it"):
        backends.backend_of(Path("model.engine"))


def test_schema_choices_come_from_the_backend_registry():
    from siteml.scenario.json_schema import scenario_json_schema

    definitions = scenario_json_schema()["$defs"]
    benchmark = definitions["InferenceBenchmarkParams"]["properties"]["backend"]["enum"]
    quant = definitions["QuantizationParams"]["properties"]["backend"]["enum"]
    assert benchmark == ["auto", *backends.BACKENDS]
    assert quant == list(backends.quantizing())


def test_experiment_types_table_drives_scenarios_sections_and_pipelines():
    assert list(EXPERIMENT_TYPES) == ["train", "quant", "infer", "mine"]
    for name, kind in EXPERIMENT_TYPES.items():
        assert issubclass(kind.scenario, BaseScenario) and SCENARIO_TYPES[name] is kind.scenario
        assert kind.section in kind.scenario.model_fields
        pipeline = importlib.import_module(kind.pipeline)
        assert all(callable(getattr(pipeline, f)) for f in ("check", "check_models", "run"))
        for role, yaml_path in kind.roles.items():  # each role's reference is a schema field
            model = kind.scenario
            for part in yaml_path.split("."):
                assert part in model.model_fields, (role, yaml_path)
                annotation = model.model_fields[part].annotation
                model = next((a for a in (annotation, *typing.get_args(annotation))
                              if isinstance(a, type) and issubclass(a, BaseModel)), None)
        assert set(EXPERIMENT_TYPES["train"].optional) == {"champion"}
