"""Timing loops and latency statistics: pure, so tested without any optional extra."""

import time

import pytest

from siteml.core import keys
from siteml.pipelines.timing import (
    REWARM,
    interleaved_latencies_ms,
    latencies_ms,
    latency_drift,
    latency_stats,
)


def test_a_call_that_reports_its_own_latency_is_timed_by_it_else_by_the_clock():
    assert latencies_ms(lambda: 0.25, warmup=1, iterations=3) == [0.25, 0.25, 0.25]
    assert all(t >= 2 for t in latencies_ms(lambda: time.sleep(0.002), warmup=0, iterations=2))


def test_interleaved_timing_takes_turns_so_that_noise_hits_every_model():
    order: list[str] = []
    calls = {"source": lambda: order.append("s"), "variant": lambda: order.append("v")}
    times = interleaved_latencies_ms(calls, warmup=2, iterations=7, rounds=3)
    assert {label: len(values) for label, values in times.items()} == {"source": 7,
                                                                        "variant": 7}
    assert all(value >= 0 for values in times.values() for value in values)
    # turns of 3, 2 and 2 timed calls; warm-up before the first turn, REWARM before the others
    turns = [(2, 3), (REWARM, 2), (REWARM, 2)]
    assert "".join(order) == "".join("s" * (untimed + timed) + "v" * (untimed + timed)
                                     for untimed, timed in turns)


def test_fewer_iterations_than_rounds_leave_out_the_empty_turns():
    order: list[str] = []
    calls = {"source": lambda: order.append("s"), "variant": lambda: order.append("v")}
    times = interleaved_latencies_ms(calls, warmup=0, iterations=2, rounds=5)
    assert [len(times["source"]), len(times["variant"])] == [2, 2]
    assert "".join(order) == "sv" + "s" * (REWARM + 1) + "v" * (REWARM + 1)


def test_drift_is_the_spread_of_medians_over_consecutive_parts_of_the_run():
    assert latency_drift([4.0] * 100) == 1.0
    assert latency_drift([4.0] * 50 + [5.0] * 50) == pytest.approx(1.25)
    # one slow outlier per part moves no median
    assert latency_drift(([4.0] * 9 + [40.0]) * 10) == 1.0
    assert latency_drift([3.0, 6.0]) == 1.0  # too short to split: one part


def test_stats_name_every_figure_with_the_shared_keys():
    stats = latency_stats([2.0] * 10 + [4.0] * 10, batch=2, wall_s=0.06)
    assert stats[keys.LATENCY_P50] == 3.0
    assert stats[keys.FPS] == pytest.approx(2 * 20 / 0.06)
    assert stats[keys.LATENCY_DRIFT] == 2.0
    assert {keys.latency_percentile(q) for q in (50, 90, 95, 99)} <= set(stats)
