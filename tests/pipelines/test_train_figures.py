"""The training pipeline's pure builders: per-class figures and the learned-nothing warning."""

from siteml.core import keys
from siteml.pipelines.train import learned_nothing, per_class_metrics, per_class_table

ROWS = [  # as Ultralytics' DetMetrics.summary() gives them (classes present in val only)
    {"Class": "helmet", "Images": 8, "Instances": 11, "Box-P": 0.9, "Box-R": 0.55, "Box-F1": 0.7,
     "mAP50": 0.61, "mAP75": 0.4, "mAP50-95": 0.38},
    {"Class": "person", "Images": 5, "Instances": 6, "Box-P": 0.8, "Box-R": 0.9, "Box-F1": 0.85,
     "mAP50": 0.92, "mAP75": 0.7, "mAP50-95": 0.66},
]


def test_per_class_metrics_are_named_by_class():
    metrics = per_class_metrics(ROWS)
    assert metrics["val/class/helmet/recall"] == 0.55
    assert metrics[keys.class_metric("person", "map50_95")] == 0.66
    assert len(metrics) == 2 * len(keys.CLASS_FIGURES)
    assert not any("vest" in name for name in metrics)  # absent from val: no figure, not 0


def test_per_class_table():
    lines = per_class_table(ROWS).splitlines()
    assert lines[0] == "class,images,instances,precision,recall,map50,map50_95"
    assert lines[1] == "helmet,8,11,0.90000,0.55000,0.61000,0.38000"
    assert len(lines) == 3


def test_a_model_with_val_map50_of_zero_is_flagged():
    assert "val mAP50 is 0.000" in learned_nothing({keys.VAL_MAP50: 0.0})
    assert "val mAP50 is 0.004" in learned_nothing({keys.VAL_MAP50: 0.004})
    assert learned_nothing({keys.VAL_MAP50: 0.01}) is None
