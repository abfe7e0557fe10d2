"""The file state: an md5 kept by inode is reused for the same file and its hard links, never
for a file edited since, and a state siteml cannot write costs time, never a result."""

from __future__ import annotations

import os

from siteml.data.dvc_hash import dir_hash, file_md5, hashed
from siteml.data.file_state import Known, recall, remember


def test_a_kept_md5_serves_the_file_and_its_links_until_the_file_changes(tmp_path):
    (tmp_path / "data").mkdir()
    image = tmp_path / "data" / "a.jpg"
    image.write_bytes(b"first")
    found, read = hashed([str(image)])
    known = found[str(image)]
    assert read == 1 and known.md5 == file_md5(image)
    os.link(image, tmp_path / "link.jpg")
    link = str(tmp_path / "link.jpg")
    assert recall([link])[link].md5 == known.md5
    assert hashed([link])[1] == 0

    image.write_bytes(b"other")  # the same size: only the mtime tells
    assert recall([str(image)])[str(image)].md5 is None
    found, read = hashed([str(image)])
    assert read == 1 and found[str(image)].md5 == file_md5(image) != known.md5


def test_a_phash_learned_later_keeps_the_md5_and_an_edit_drops_both(tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"first")
    known = hashed([str(image)])[0][str(image)]
    remember([Known(image.stat(), None, 0xFFFF_0000_FFFF_0000)])
    both = recall([str(image)])[str(image)]
    assert (both.md5, both.phash) == (known.md5, 0xFFFF_0000_FFFF_0000)
    image.write_bytes(b"later, longer")
    remember([Known(image.stat(), None, 5)])
    after = recall([str(image)])[str(image)]
    assert (after.md5, after.phash) == (None, 5)


def test_a_state_that_cannot_be_written_still_hashes_right(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("SITEML_CACHE_DIR", str(blocked))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("x")
    first = dir_hash(tmp_path / "data")
    (tmp_path / "data" / "a.txt").write_text("y")
    assert dir_hash(tmp_path / "data") != first
