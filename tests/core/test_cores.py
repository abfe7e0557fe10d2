"""How ``siteml run --jobs N`` shares this machine's cores out."""

import pytest

from siteml.core.cores import core_shares, usable_cores
from siteml.core.errors import InvalidInputError


def test_shares_are_disjoint_cover_every_core_and_differ_by_one_at_most():
    cores = usable_cores()
    for jobs in range(1, len(cores) + 1):
        shares = core_shares(jobs)
        assert len(shares) == jobs
        assert sorted(c for share in shares for c in share) == cores
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_more_jobs_than_cores_share_them_only_when_asked():
    cores = usable_cores()
    with pytest.raises(InvalidInputError, match=f"may use {len(cores)} cores.*--share-cores"):
        core_shares(len(cores) + 1)
    assert core_shares(len(cores) + 1, share=True) == [cores] * (len(cores) + 1)
    with pytest.raises(InvalidInputError, match="--jobs 0"):
        core_shares(0)

