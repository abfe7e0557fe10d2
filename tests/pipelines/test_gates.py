"""The gates' verdicts on measured figures, and the evaluator's per-class names (pure)."""

import pytest

from siteml.core import keys
from siteml.pipelines.detection_map import Scores, deltas
from siteml.pipelines.gates import quantization_verdict, training_verdict
from siteml.scenario.schema import TrainingGate

CLASSES = ["helmet", "vest", "person"]
METRICS = {"val/map50": 0.8, "val/map50_95": 0.5, "val/recall": 0.7,
           "val/class/helmet/recall": 0.9, "val/class/vest/recall": 0.4,
           "val/class/helmet/map50": 0.85, "val/class/vest/map50": 0.6}


def gate(**rules) -> TrainingGate:
    return TrainingGate.model_validate(rules)


def test_absolute_rules_pass_and_fail_with_the_figures():
    verdict = training_verdict(gate(min={"map50": 0.5, "map50_95": 0.6}), METRICS, CLASSES, None)
    assert verdict.rules == ["map50 >= 0.5", "map50_95 >= 0.6"]
    assert verdict.reasons == ["map50_95 is 0.5000, below 0.6"]
    assert verdict.tags()[keys.GATE] == keys.GATE_REFUSED


def test_per_class_rules_name_the_class_and_a_class_absent_from_val_is_not_scored():
    verdict = training_verdict(gate(min_per_class={"recall": {"*": 0.5}}), METRICS, CLASSES, None)
    assert verdict.reasons == [
        "vest recall is 0.4000, below 0.5",
        "person recall: not scored (val has no 'person' boxes), needs >= 0.5"]
    passed = training_verdict(gate(min_per_class={"recall": {"helmet": 0.8}}), METRICS, CLASSES,
                              None)
    assert passed.reasons == [] and passed.tags() == {
        keys.GATE: keys.GATE_PASSED, keys.GATE_RULES: "helmet recall >= 0.8"}


def test_champion_rule_compares_the_same_figure_of_both():
    scored = {**METRICS, "challenger/map50_95": 0.47, "champion/map50_95": 0.5}
    rule = gate(compare_to="champion", max_regression=0.02)
    verdict = training_verdict(rule, scored, CLASSES, "a/b-c/d/ppe/3")
    assert verdict.rules == ["map50_95 at most 0.02 below @champion (a/b-c/d/ppe/3)"]
    assert verdict.reasons == ["map50_95 is 0.4700 on this val split, 0.0300 below @champion "
                               "a/b-c/d/ppe/3 (0.5000); max_regression is 0.02"]
    assert training_verdict(gate(compare_to="champion", max_regression=0.05), scored, CLASSES,
                            "a/b-c/d/ppe/3").reasons == []
    alone = training_verdict(rule, METRICS, CLASSES, None)
    assert alone.reasons == [] and "nothing to compare with" in alone.rules[0]


def test_site_gate_under_the_scenario_gate():
    site = gate(min={"map50": 0.5, "recall": 0.6}, min_per_class={"recall": {"helmet": 0.8}})
    own = gate(min={"map50": 0.7}, min_per_class={"recall": {"vest": 0.3}}, compare_to="champion")
    merged = own.over(site)
    assert merged.min.model_dump(exclude_none=True) == {"recall": 0.6, "map50": 0.7}
    assert merged.class_rules() == [("recall", "helmet", 0.8), ("recall", "vest", 0.3)]
    assert merged.compare_to == "champion"
    assert site.over(None) is site


def test_quantization_per_class_drop():
    metrics = {keys.SOURCE_MAP50_95: 0.5, keys.VARIANT_MAP50_95: 0.495,
               "source/class/helmet/map50_95": 0.6, "variant/class/helmet/map50_95": 0.52,
               "source/class/vest/map50_95": 0.4, "variant/class/vest/map50_95": 0.41}
    assert quantization_verdict(metrics, CLASSES, 0.01, None).reasons == []
    verdict = quantization_verdict(metrics, CLASSES, 0.01, 0.05)
    assert verdict.reasons == ["helmet AP50-95 loses 0.0800 (0.6000 -> 0.5200), more than "
                               "max_class_drop 0.05"]
    assert verdict.rules == ["mAP50-95 loses at most max_accuracy_drop 0.01",
                             "helmet AP50-95 loses at most max_class_drop 0.05",
                             "vest AP50-95 loses at most max_class_drop 0.05"]


def test_scores_are_named_by_label_and_class():
    before = Scores(0.8, 0.5, {0: dict.fromkeys(keys.CLASS_FIGURES, 0.5)})
    after = Scores(0.7, 0.45, {0: dict.fromkeys(keys.CLASS_FIGURES, 0.25)})
    assert before.metrics("champion", CLASSES)["champion/class/helmet/recall"] == 0.5
    delta = deltas(before, after, CLASSES)
    assert delta["delta/map50_95"] == pytest.approx(-0.05)
    assert delta["delta/class/helmet/map50"] == -0.25
    assert keys.worst_class(after.metrics("variant", CLASSES), "variant") == "helmet 0.250"
