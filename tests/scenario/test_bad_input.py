"""Every kind of bad scenario: exit 2, one clear line per problem naming file, line and field."""

import pytest

from siteml.scenario.types import EXPERIMENT_TYPES
from siteml.scenario.yaml_loader import MAX_FILE_BYTES
from tests.conftest import VALID_SCENARIO, line_of, with_site

# (id, old text, new text, YAML path named, words the message must contain); the problem's line
# is that of the last line of the new text, or of NEEDLE[id] (line 1: the document itself).
NEEDLE = {"params-mismatch": "quantization:", "missing-section": "name:",
          "missing-experiment-type": "name:"}
MUTATIONS = [
    ("unknown-key", "  epochs: 5", "  epocs: 5", "training.epocs", "did you mean 'epochs'"),
    ("unknown-top-key", "version: v2", "version: v2\nowner: kim", "owner", "allowed: "),
    ("wrong-type", "  epochs: 5", "  epochs: five", "training.epochs", "valid integer"),
    ("wrong-type-list", "  classes: [helmet, vest, person]", "  classes: helmet",
     "task.classes", "valid list"),
    ("missing-section", "dataset:\n", "dataset_x:\n", "dataset", "required key missing"),
    ("unknown-task", "  type: ppe", "  type: smoke", "task.type",
     "'ppe', 'fall', 'fire', 'collision' or 'stuck'"),
    ("unknown-experiment-type", "experiment_type: train", "experiment_type: eval",
     "experiment_type", f"valid: {', '.join(EXPERIMENT_TYPES)}"),
    ("missing-experiment-type", "experiment_type: train\n", "", "experiment_type",
     "required key missing"),
    ("params-mismatch", "training:\n  epochs: 5\n  batch: 8",
     "training:\n  epochs: 5\n  batch: 8\nquantization:\n  backend: openvino",
     "quantization", "belongs to experiment_type 'quant'"),
    ("class-count", "  num_classes: 3", "  num_classes: 4", "model.num_classes",
     "task.classes names 3"),
    ("upper-case", "  zone: welding", "  zone: Welding", "site.zone", "lowercase slug"),
    ("space", "  zone: welding", "  zone: weld ing", "site.zone", "U+0020"),
    ("slash", "  plant: plant1", "  plant: plant/1", "site.plant", "'/'"),
    ("dot", "  plant: plant1", "  plant: plant.1", "site.plant", "'.'"),
    ("dotdot", "  region: busan", "  region: '..'", "site.region", "'.'"),
    ("look-alike", "  customer: donghwa-entec", "  customer: donghw\u0430-entec",
     "site.customer", "U+0430"),
    ("reserved-workspace", "  customer: donghwa-entec", "  customer: api",
     "site.customer", "reserves for its workspaces"),
    ("one-letter-customer", "  customer: donghwa-entec", "  customer: d",
     "site.customer", "at least 2"),
    ("customer-dash", "  customer: donghwa-entec", "  customer: donghwa-",
     "site.customer", "must not end with '-'"),
    ("too-long", "  zone: welding", "  zone: " + "w" * 64, "site.zone", "at most 63"),
    ("version", "version: v2", "version: 2.1", "version", "use 'v<N>'"),
    ("version-string", "version: v2", "version: version2", "version", "use 'v<N>'"),
    ("input-size", "  input_size: 640", "  input_size: 650", "model.input_size", "multiple of 32"),
    ("dvc-hash", "  dvc_hash: 3f2a9c4e1b7d8a6f5e4c3b2a1d0e9f8c.dir", "  dvc_hash: 3f2a",
     "dataset.dvc_hash", "32 lowercase hex"),
    ("duplicate-key", "  batch: 8", "  batch: 8\n  batch: 4", "training.batch", "duplicate key"),
    ("bad-device", "  device: cpu", "  device: tpu", "environment.device", "pattern"),
    ("gate-metric", "  batch: 8", "  batch: 8\n  gate:\n    min:\n      mAP: 0.5",
     "training.gate.min.mAP", "allowed: precision, recall, map50, map50_95"),
    ("gate-class", "  batch: 8", "  batch: 8\n  gate:\n    min_per_class:\n      recall:\n"
     "        hemlet: 0.8", "training.gate.min_per_class.recall.hemlet",
     "'hemlet' is not a class of the task (classes: helmet, vest, person"),
    ("gate-range", "  batch: 8", "  batch: 8\n  gate:\n    min:\n      map50: 50",
     "training.gate.min.map50", "less than or equal to 1"),
    ("gate-compare", "  batch: 8", "  batch: 8\n  gate:\n    compare_to: best",
     "training.gate.compare_to", "'champion'"),
    ("weights-ref", "  num_classes: 3", "  num_classes: 3\n  weights_path: donghwa-entec/x",
     "model.weights_path", "neither a .pt file nor a model reference"),
    ("weights-variant", "  num_classes: 3", "  num_classes: 3\n  weights_path: "
     "donghwa-entec/busan-plant1/welding/ppe__openvino_int8@champion", "model.weights_path",
     "quantized variant openvino_int8, which cannot be trained"),
    ("weights-customer", "  num_classes: 3", "  num_classes: 3\n  weights_path: "
     "sampyo/yeoju-plant2/batching/ppe@champion", "model.weights_path",
     "belongs to customer 'sampyo'"),
]


@pytest.mark.parametrize(("case", "old", "new", "path", "words"), MUTATIONS,
                         ids=[m[0] for m in MUTATIONS])
def test_mutation_is_reported_with_file_line_and_field(cli, write, case, old, new, path, words):
    assert old in VALID_SCENARIO
    text = VALID_SCENARIO.replace(old, new, 1)
    file = write(text)
    line = line_of(text, NEEDLE.get(case) or new.strip().splitlines()[-1])
    code, out, err = cli("validate", str(file))
    assert code == 2
    assert "Traceback" not in out + err
    assert f"{file}:{line}: {path}: " in err, err
    assert words in err, err


def test_all_problems_of_a_file_are_reported_together(cli, write):
    text = (VALID_SCENARIO.replace("  zone: welding", "  zone: Welding")
            .replace("  epochs: 5", "  epochs: 0").replace("  type: ppe", "  type: smoke"))
    code, _, err = cli("validate", str(write(text)))
    assert code == 2
    assert [line.split(": ")[1] for line in err.splitlines()] == [
        "site.zone", "task.type", "training.epochs"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name: [unclosed\nversion: v1\n", 2, "malformed YAML"),
        ("- name: a\n- name: b\n", 1, "top level is a list"),
        ("", None, "file is empty"),
        ("# only a comment\n", None, "file is empty"),
        ("a: 1\n---\nb: 2\n", 2, "more than one YAML document"),
        ("a: &x\n  b: *x\n", 2, "recursive alias"),
        ("a: !!python/object:os.system {}\n", 1, "unsupported YAML tag"),
        ("a: !!python/name:os.system ''\n", 1, "malformed YAML"),
    ],
    ids=["malformed", "top-level-list", "empty", "comment-only", "two-documents",
         "recursive-alias", "python-object", "python-name"],
)
def test_unloadable_files(cli, write, text, line, words):
    file = write(text)
    code, out, err = cli("validate", str(file))
    assert code == 2
    where = f"{file}:{line}: " if line else f"{file}: "
    assert err.startswith(where), err
    assert words in err
    assert "Traceback" not in out + err


def test_alias_bomb_is_rejected_not_expanded(cli, write):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]")
    code, _, err = cli("validate", str(write("\n".join(lines) + "\n")))
    assert code == 2
    assert "alias expansion bomb" in err


def test_deep_nesting_is_rejected(cli, write):
    # siteml's promise: invalid input, located in the file, no traceback; the words may come
    # from siteml's own depth limit or from PyYAML's (6.0.4 refuses deep nesting itself)
    file = write("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, err = cli("validate", str(file))
    assert code == 2
    assert err.startswith(f"{file}:1:")
    assert "Traceback" not in err


def test_huge_file_is_rejected_before_parsing(cli, write):
    file = write("# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    code, _, err = cli("validate", str(file))
    assert code == 2
    assert "YAML input is limited to" in err


def test_unknown_site_id_suggests_known_ones(cli, tmp_path, write):
    write("customer: acme\nregion: r\nplant: p\nzone: z\n", "configs/sites/acme-z.yaml")
    text = with_site(VALID_SCENARIO, "acme-x")
    file = write(text, "experiments/acme/s.yaml")
    code, _, err = cli("validate", str(file))
    assert code == 2
    assert f"{file}:4: site: unknown site id 'acme-x' (did you mean 'acme-z'?)" in err


def test_site_file_problems_point_into_the_site_file(cli, tmp_path, write):
    site = write("customer: acme\nregion: R\nplant: p\nzone: z\n", "configs/sites/acme-z.yaml")
    text = with_site(VALID_SCENARIO, "acme-z")
    code, _, err = cli("validate", str(write(text, "experiments/s.yaml")))
    assert code == 2
    assert f"{site}:2: site.region: 'R' must be a lowercase slug" in err
