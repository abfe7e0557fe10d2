"""The gates' verdicts on measured figures, and the evaluator's per-class names and
noise (pure)."""

import numpy as np
import pytest

from siteml.core import keys
from siteml.pipelines.detection_map import Scores, deltas, drop_standard_error, evaluate
from siteml.pipelines.gates import quantization_verdict, training_verdict
from siteml.scenario.gates import TrainingGate

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


def test_a_refused_loss_states_its_standard_error():
    metrics = {keys.SOURCE_MAP50_95: 0.5, keys.VARIANT_MAP50_95: 0.49,
               keys.DELTA_MAP50_95_SE: 0.006}
    assert quantization_verdict(metrics, CLASSES, 0.005, None).reasons == [
        "mAP50-95 loses 0.0100 (0.5000 -> 0.4900), more than max_accuracy_drop 0.005 "
        "(standard error of the loss on this val split: 0.0060)"]


def test_scores_are_named_by_label_and_class():
    before = Scores(0.8, 0.5, {0: dict.fromkeys(keys.CLASS_FIGURES, 0.5)})
    after = Scores(0.7, 0.45, {0: dict.fromkeys(keys.CLASS_FIGURES, 0.25)})
    assert before.metrics("champion", CLASSES)["champion/class/helmet/recall"] == 0.5
    delta = deltas(before, after, CLASSES)
    assert delta["delta/map50_95"] == pytest.approx(-0.05)
    assert delta["delta/class/helmet/map50"] == -0.25
    assert keys.worst_class(after.metrics("variant", CLASSES), "variant") == "helmet 0.250"


def raw_output(box, score: float, anchors: int = 4):
    """A raw ``(1, 4 + 3, anchors)`` output holding one class-0 ``x1, y1, x2, y2`` box."""
    output = np.zeros((1, 7, anchors), np.float32)
    x1, y1, x2, y2 = box
    output[0, :5, 0] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, score]
    return output


@pytest.mark.slow  # the evaluator is Ultralytics' NMS and AP (torch)
def test_the_standard_error_of_a_loss_shrinks_with_the_square_root_of_the_val_split():
    rng = np.random.default_rng(1)
    corners = rng.uniform(10, 200, (40, 2))
    truths = [np.array([[0, x, y, x + 40, y + 40]]) for x, y in corners]
    exact = [raw_output(truth[0, 1:], 0.9) for truth in truths]
    moved = [raw_output(truth[0, 1:] + rng.uniform(0, 8), 0.9) for truth in truths]
    before, after = evaluate(exact, truths), evaluate(moved, truths)
    assert drop_standard_error(before, evaluate(exact, truths)) == 0  # the same outputs
    error = drop_standard_error(before, after)
    assert 0 < error < before.map50_95 - after.map50_95
    four = drop_standard_error(evaluate(exact * 4, truths * 4), evaluate(moved * 4, truths * 4))
    assert four / error == pytest.approx(0.5, abs=0.15)  # four times the images: half the error
