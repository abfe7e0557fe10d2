"""A run key names what a run reads by content, not by where it sits: the dataset by its DVC
hash and count, a ``.pt`` file by its sha256, an export folder by the version it holds. So a
copied or moved folder (a teammate's clone, a CI checkout) resumes; changed content does not."""

import json
import shutil
import typing
from pathlib import Path
from types import SimpleNamespace

from pydantic import BaseModel

from siteml.core.digests import file_hashes
from siteml.data.dvc_hash import dir_hash
from siteml.lifecycle.repository import MANIFEST
from siteml.scenario.factory import load_scenario
from siteml.scenario.types import SCENARIO_TYPES
from tests.conftest import VALID_SCENARIO, line_of


def with_weights(site_scenario) -> None:
    """Start the training from a ``.pt`` file beside the scenario."""
    folder = site_scenario.path.parent
    (folder / "start.pt").write_bytes(b"starting weights")
    text = site_scenario.path.read_text()
    site_scenario.path.write_text(text.replace("  num_classes: 3\n",
                                               "  num_classes: 3\n  weights_path: start.pt\n"))


def moved(site_scenario, tmp_path):
    """The scenario, its data and weights copied to another folder; the new scenario path."""
    other = tmp_path / "elsewhere" / "clone"
    other.mkdir(parents=True)
    for name in ("scenario.yaml", "start.pt"):
        shutil.copy2(site_scenario.path.parent / name, other / name)
    shutil.copytree(site_scenario.path.parent / "data", other / "data")
    return other / "scenario.yaml"


def test_a_moved_folder_has_the_same_run_key(cli, store_uri, site_scenario, pipelines,
                                             tmp_path):
    with_weights(site_scenario)
    code, out, err = cli("run", str(site_scenario.path), "--json")
    assert code == 0, err
    first = json.loads(out)
    path = moved(site_scenario, tmp_path)
    shutil.rmtree(site_scenario.path.parent / "data")  # gone from where it was
    code, out, err = cli("plan", str(path.parent), "--json")
    assert code == 0, err
    assert [row["action"] for row in json.loads(out)] == ["skipped"]
    code, out, err = cli("run", str(path), "--json")
    assert code == 0, err
    again = json.loads(out)
    assert (again["status"], again["run_id"]) == ("SKIPPED", first["run_id"])


def test_changed_data_or_weights_are_another_run_key(cli, store_uri, site_scenario, pipelines,
                                                     tmp_path):
    with_weights(site_scenario)
    assert cli("run", str(site_scenario.path))[0] == 0
    path = moved(site_scenario, tmp_path)
    (path.parent / "start.pt").write_bytes(b"other weights")
    code, _, err = cli("run", str(path))
    assert code == 2 and "already FINISHED" in err, err
    (path.parent / "start.pt").write_bytes(b"starting weights")
    (path.parent / "data" / "images" / "train" / "3.jpg").write_bytes(b"one more")
    text = path.read_text()
    path.write_text(text.replace("image_count: 3", "image_count: 4").replace(
        dir_hash(site_scenario.path.parent / "data").md5, dir_hash(path.parent / "data").md5))
    code, _, err = cli("run", str(path))
    assert code == 2 and "already FINISHED" in err, err


def test_missing_weights_are_refused_at_their_line(cli, store_uri, site_scenario, pipelines):
    with_weights(site_scenario)
    (site_scenario.path.parent / "start.pt").unlink()
    code, _, err = cli("run", str(site_scenario.path))
    line = line_of(site_scenario.path.read_text(), "weights_path")
    assert code == 2
    assert f"{site_scenario.path}:{line}: model.weights_path: " in err and "no file" in err


def test_an_export_folder_is_named_by_the_version_it_holds(tmp_path):
    from siteml.lifecycle.attempts import run_key

    read = {"source": SimpleNamespace(name="a.b.c.ppe__openvino_int8", version="3")}
    keys = []
    for where in ("here", "there"):
        folder = tmp_path / where / "a_b_c_ppe__openvino_int8" / "3"
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(b"int8")
        (folder / MANIFEST).write_text(json.dumps({"files": file_hashes(folder)}))
        scenario = tmp_path / where / "bench.yaml"
        scenario.write_text(VALID_SCENARIO.replace("experiment_type: train", "experiment_type: "
                                                   "infer").split("training:")[0]
                            + f"benchmark:\n  source: {folder}\n")
        keys.append(run_key(load_scenario(scenario, check_data=False), read))
    assert keys[0] == keys[1]


def path_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The YAML paths of ``model``'s fields that may hold a filesystem path."""
    def types(annotation):
        yield annotation
        for argument in typing.get_args(annotation):
            yield from types(argument)

    found = set()
    for name, field in model.model_fields.items():
        for kind in types(field.annotation):
            if kind is Path:
                found.add(prefix + name)
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= path_fields(kind, f"{prefix}{name}.")
    return found


def test_every_path_a_scenario_holds_is_named_by_content():
    """A new path field must be named by content in the run key (``_by_content``) too."""
    found = set().union(*(path_fields(kind) for kind in SCENARIO_TYPES.values()))
    assert found == {"dataset.path", "model.weights_path", "benchmark.source", "mine.frames"}
