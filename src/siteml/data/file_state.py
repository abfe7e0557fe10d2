"""What siteml learned of a file it read: its md5 (DVC's file hash) and its pHash, kept by
inode in a SQLite file under the cache folder and trusted while the file's size and mtime are
those it had, as DVC's own state database does. A hard link shares its file's inode, so a
dataset version grown by linking its parent's files knows every hash its parent had.

The state is a cache: a file it cannot open or write (read-only home, a locked database) costs
time, never a result.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "SITEML_CACHE_DIR"
SCAN_ALL = 4
"""Read the whole state when it holds at most this many rows per file asked (faster than a
join for a dataset that is most of it)."""
_SCHEMA = ("CREATE TABLE IF NOT EXISTS files (dev INTEGER, inode INTEGER, size INTEGER, "
           "mtime_ns INTEGER, md5 TEXT, phash TEXT, PRIMARY KEY (dev, inode))")


@dataclass(frozen=True)
class Known:
    """A file's stat when it was read, and what was learned of it."""

    stat: os.stat_result
    md5: str | None = None
    phash: int | None = None


def cache_dir() -> Path:
    """``$SITEML_CACHE_DIR``, else ``$XDG_CACHE_HOME/siteml``, else ``~/.cache/siteml``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "siteml"


@contextmanager
def _database() -> Iterator[sqlite3.Connection | None]:
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(folder / "file-state.sqlite", timeout=10)
        connection.execute(_SCHEMA)
    except (OSError, sqlite3.Error):
        yield None
        return
    try:
        yield connection
    finally:
        connection.close()


def recall(paths: Iterable[str]) -> dict[str, Known]:
    """Each file's stat, with its md5 and pHash where the state holds them for that stat."""
    stats = {path: os.stat(path) for path in paths}
    rows: dict[tuple[int, int], tuple[int, int, str | None, str | None]] = {}
    with _database() as db, suppress(sqlite3.Error):
        if db is not None:
            query = "SELECT dev, inode, size, mtime_ns, md5, phash FROM files"
            (held,) = db.execute("SELECT count(*) FROM files").fetchone()
            if held > SCAN_ALL * len(stats):  # a few of many: join on the ones asked
                db.execute("CREATE TEMP TABLE wanted (dev INTEGER, inode INTEGER)")
                db.executemany("INSERT INTO wanted VALUES (?, ?)",
                               {(s.st_dev, s.st_ino) for s in stats.values()})
                query += " JOIN wanted USING (dev, inode)"
            for dev, inode, *known in db.execute(query):
                rows[(dev, inode)] = (known[0], known[1], known[2], known[3])
    found = {}
    for path, stat in stats.items():
        size, mtime, md5, phash = rows.get((stat.st_dev, stat.st_ino), (-1, -1, None, None))
        fresh = size == stat.st_size and mtime == stat.st_mtime_ns
        found[path] = Known(stat, md5 if fresh else None,
                            int(phash, 16) if fresh and phash else None)
    return found


def remember(known: Iterable[Known]) -> None:
    """Keep what was learned of these files, under the stat each had when it was read."""
    rows = [(k.stat.st_dev, k.stat.st_ino, k.stat.st_size, k.stat.st_mtime_ns, k.md5,
             None if k.phash is None else f"{k.phash:016x}") for k in known]
    with _database() as db, suppress(sqlite3.Error):
        if db is not None:
            with db:
                db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                               f"(dev, inode) DO UPDATE SET md5 = {_kept('md5')}, phash = "
                               f"{_kept('phash')}, size = excluded.size, mtime_ns = "
                               "excluded.mtime_ns", rows)


def _kept(column: str) -> str:
    """The new value, else the old one while the file is as it was."""
    return (f"CASE WHEN files.size = excluded.size AND files.mtime_ns = excluded.mtime_ns "
            f"THEN coalesce(excluded.{column}, files.{column}) ELSE excluded.{column} END")
