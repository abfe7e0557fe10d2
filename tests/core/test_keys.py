"""MLflow key names: per-batch forms, roles, and the headline sets."""

import pytest

from siteml.core import keys
from siteml.scenario.types import EXPERIMENT_TYPES


def test_batch_metrics_round_trip_and_sort_by_size():
    metrics = {keys.batch_metric(b, keys.LATENCY_P50): 1.0 for b in (8, 1, 16)}
    metrics[keys.batch_metric(4, keys.FPS)] = 9.0
    metrics["b0/latency_p50_ms"] = 1.0  # not a batch size
    assert keys.batch_sizes(metrics) == [1, 8, 16]
    assert keys.batch_sizes(metrics, keys.FPS) == [4]


def test_role_tags_exist_only_for_known_roles_and_fields():
    assert keys.role_tag("source", "model_name") == keys.SOURCE_MODEL_NAME == "source.model_name"
    assert keys.role_tag("baseline", "model_name") == keys.BASELINE_MODEL_NAME
    for role, field in (("teacher", "model_name"), ("source", "colour")):
        with pytest.raises(KeyError):
            keys.role_tag(role, field)
    roles = {role for kind in EXPERIMENT_TYPES.values() for role in kind.roles}
    assert roles <= set(keys.MODEL_ROLES)


def test_headlines_are_named_for_experiment_types():
    assert set(keys.HEADLINE) <= set(EXPERIMENT_TYPES)
    assert keys.VAL_MAP50_95 in keys.HEADLINE["train"]
    assert keys.VARIANT_MAP50_95 in keys.HEADLINE["quant"]
