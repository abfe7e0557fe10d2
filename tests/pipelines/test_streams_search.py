"""The cameras-per-box search: the largest passing count, whatever the first guess."""

import math

import pytest

from siteml.pipelines.streams import largest_passing


@pytest.mark.parametrize("limit", [1, 7, 64])
def test_search_finds_the_largest_passing_count_in_few_steps(limit):
    for most in range(0, limit + 3):
        for guess in range(1, limit + 1):
            asked = []

            def passes(count, most=most, asked=asked):
                assert 1 <= count <= limit
                asked.append(count)
                return count <= most

            assert largest_passing(passes, guess, limit) == min(most, limit)
            assert len(asked) == len(set(asked)), asked  # no count measured twice
            assert len(asked) <= 4 * math.log2(limit + 1) + 2, (most, guess, asked)


def test_a_search_stopped_at_its_limit_says_so_everywhere_it_is_shown():
    from siteml.cli.render import COMPARE_COLUMNS, headline
    from siteml.core import keys
    from siteml.pipelines.streams import find_max_cameras

    # streams that take no time (two frames each, a second's latency allowed): every count
    # passes, up to the limit of 3
    found = find_max_cameras(lambda camera: lambda: None, 1, fps=10, max_latency_ms=1000,
                             seconds=0.15, limit=3)
    assert (found.max_cameras, found.capped) == (3, True)
    metrics = found.metrics(10, 1000)
    assert (metrics[keys.STREAMS_MAX_CAMERAS], metrics[keys.STREAMS_CAPPED]) == (3, 1)
    assert found.summary(10).startswith(">=3 cameras at 10 FPS (flat out: ")
    assert "the limit, not the box's most" in found.summary(10)
    assert "raise benchmark.streams (up to 256)" in found.summary(10)
    assert headline(metrics).startswith("3 cameras  @ 10 FPS  (the search's limit: or more)")
    [cameras] = [c for c in COMPARE_COLUMNS if c.key == "cameras"]
    assert cameras.from_row({"cameras": 3, "cameras_capped": True}) == ">=3 (cap)"


def test_a_count_below_the_limit_reads_as_it_is():
    from siteml.cli.render import COMPARE_COLUMNS, headline
    from siteml.core import keys
    from siteml.pipelines.streams import Cameras

    found = Cameras(max_cameras=39, capacity_fps=390.0, steps=[], limit=64)
    metrics = found.metrics(10, 100)
    assert not found.capped and metrics[keys.STREAMS_CAPPED] == 0
    assert found.summary(10) == "39 cameras at 10 FPS (flat out: 390.0 FPS)"
    assert headline(metrics).startswith("39 cameras  @ 10 FPS  streams/")  # no cap note
    [cameras] = [c for c in COMPARE_COLUMNS if c.key == "cameras"]
    assert cameras.from_row({"cameras": 39, "cameras_capped": False}) == "39"
    assert cameras.from_row({"cameras": None, "cameras_capped": None}) == ""
