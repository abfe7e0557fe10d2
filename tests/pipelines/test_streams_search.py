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
