import pytest

from siteml.core.naming import ModelRef, registered_model_name, registry_path, slug_problem

BASE = "donghwa-entec.busan-plant1.welding.ppe"


@pytest.mark.parametrize(
    ("text", "name", "alias", "version"),
    [
        ("donghwa-entec/busan-plant1/welding/ppe@champion", BASE, "champion", None),
        ("donghwa-entec/busan-plant1/welding/ppe/3", BASE, None, 3),
        ("models:/donghwa-entec.busan-plant1.welding.ppe__openvino_int8@candidate",
         f"{BASE}__openvino_int8", "candidate", None),
        ("models:/donghwa-entec.busan-plant1.welding.ppe/12", BASE, None, 12),
        ("donghwa-entec.busan-plant1.welding.ppe@champion", BASE, "champion", None),
        ("donghwa-entec/busan-plant1/welding/ppe__onnxruntime_int8/1",
         f"{BASE}__onnxruntime_int8", None, 1),
    ],
)
def test_model_ref_parses_every_spelling(text, name, alias, version):
    ref = ModelRef.parse(text)
    assert (ref.name, ref.alias, ref.version) == (name, alias, version)
    assert ModelRef.parse(ref.uri) == ref
    assert ModelRef.parse(ref.path) == ref


def test_model_ref_parts():
    ref = ModelRef.parse("donghwa-entec/busan-plant1/welding/ppe__openvino_int8@champion")
    assert ref.site == "donghwa-entec/busan-plant1/welding"
    assert (ref.task, ref.variant) == ("ppe", "openvino_int8")
    assert ref.uri == f"models:/{BASE}__openvino_int8@champion"
    assert ref.path == "donghwa-entec/busan-plant1/welding/ppe__openvino_int8@champion"
    assert ModelRef.parse("donghwa-entec/busan-plant1/welding/ppe/2").uri == f"models:/{BASE}/2"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("donghwa-entec/busan-plant1/welding/ppe", "names no version"),
        ("donghwa-entec/busan-plant1/ppe@champion", "got 3 part(s)"),
        ("donghwa-entec/busan-plant1/welding/ppee@champion", "unknown task 'ppee'"),
        ("Donghwa/busan-plant1/welding/ppe@champion", "customer 'Donghwa'"),
        ("donghwa-entec/busan-plant1/welding/ppe@Champion", "alias 'Champion'"),
        ("donghwa-entec/busan-plant1/welding/ppe@v3", "alias 'v3'"),
        ("donghwa-entec/busan-plant1/welding/ppe/0", "start at 1"),
        ("donghwa-entec/busan-plant1/welding/ppe__int8@candidate", "variant 'int8'"),
        ("donghwa-entec/busan-plant1.welding/ppe@x", "mixes"),
        ("models:/donghwa-entec.busan-plant1..welding.ppe@x", "part(s)"),
    ],
)
def test_model_ref_rejects_with_reason(text, fragment):
    with pytest.raises(ValueError) as info:
        ModelRef.parse(text)
    assert fragment in str(info.value)


def test_registered_name_round_trips_to_registry_path():
    name = registered_model_name("sampyo/yeoju-plant2/conveyor", "stuck", "onnxruntime_int8")
    assert name == "sampyo.yeoju-plant2.conveyor.stuck__onnxruntime_int8"
    assert registry_path(name) == "sampyo/yeoju-plant2/conveyor/stuck__onnxruntime_int8"
    assert "/" not in name and ":" not in name


@pytest.mark.parametrize("bad", ["", "Busan", "busan plant", "a/b", "a.b", "..", "-a", "a_b",
                                 "\u0430bc", "x" * 64, "caf\u00e9"])
def test_slug_rejects(bad):
    assert slug_problem(bad)


@pytest.mark.parametrize("good", ["a", "plant1", "donghwa-entec", "x" * 63, "0-9"])
def test_slug_accepts(good):
    assert slug_problem(good) is None
