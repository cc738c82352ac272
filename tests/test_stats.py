from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from backends import DURATION, HOSTS, PAGES, RUNS, URLS, build_stats_db

from crawler.commands.stats import Stats, format_hosts, format_stats, read_stats
from crawler.errors import UsageError
from crawler.storage.sqlite import prepare


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return build_stats_db(tmp_path / "crawl.db")


def scalar(path: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        value: int = db.execute(sql).fetchone()[0]
    return value


def _status_class(status: int | None) -> str:
    if status is None:
        return "no response"
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


# What the summary must say of the rows above, worked out here from the lists, not by SQL.
TOTALS = {
    "pages": len(PAGES),
    "urls": sum(count for *_, count in URLS),
    "bytes": sum(size for _, _, size, _ in PAGES),
    "errors": sum(error is not None for *_, error in PAGES),
    "hosts": len({host for host, *_ in PAGES} | {host for host, *_ in HOSTS}),
}


@pytest.mark.parametrize("field", list(TOTALS))
def test_totals(db_path: Path, field: str) -> None:
    assert getattr(read_stats(db_path), field) == TOTALS[field]


def test_status_classes(db_path: Path) -> None:
    stats = read_stats(db_path)
    expected = Counter(_status_class(status) for _, status, _, _ in PAGES)
    assert {name: n for name, n in stats.status_classes.items() if n} == expected
    assert set(expected) == {"1xx", "2xx", "3xx", "4xx", "5xx", "other", "no response"}


def test_url_states_and_skip_reasons(db_path: Path) -> None:
    stats = read_stats(db_path)
    assert stats.url_states == {"done": 11, "failed": 2, "queued": 4, "skipped": 7}
    # Biggest first; skipped without a reason counts as "unknown".
    assert list(stats.skip_reasons.items()) == [
        ("depth", 3),
        ("robots", 2),
        ("exclude", 1),
        ("unknown", 1),
    ]


def test_duration_and_rate(db_path: Path) -> None:
    stats = read_stats(db_path)
    assert stats.duration == pytest.approx(DURATION)
    assert stats.pages_per_second == pytest.approx(len(PAGES) / DURATION)
    assert [(r.started_at, r.ended_at, r.outcome, r.pages) for r in stats.runs] == RUNS


def test_format_stats(db_path: Path) -> None:
    text = format_stats(read_stats(db_path))
    assert text.splitlines() == [
        str(db_path),
        "  pages      13  (1xx 1, 2xx 5, 3xx 1, 4xx 2, 5xx 1, other 1, no response 2)",
        "  urls       24  (done 11, failed 2, queued 4, skipped 7: depth 3, robots 2, exclude 1,"
        " unknown 1)",
        "  hosts      3",
        "  bytes      1.9 MB  (1938357 bytes)",
        "  errors     3",
        f"  duration   14.8 s   {13 / DURATION:.1f} pages/s",
        "  look at    broken links 0, redirect chains 0, orphans 0, duplicate bodies 0,"
        " duplicate titles 0 (crawler report lists them)",
        "  runs       1: 2026-11-25 00:00:00 → 00:00:10 interrupted, 8 pages",
        "             2: 2026-11-25 00:01:00 → ? crashed, 5 pages",
        "             3: 2026-11-25 00:02:00 → ? running, 0 pages",
    ]


def test_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    prepare(path)
    stats = read_stats(path)
    assert (stats.pages, stats.urls, stats.hosts, stats.bytes, stats.duration) == (0, 0, 0, 0, 0)
    assert stats.pages_per_second is None
    text = format_stats(stats)
    assert "  pages      0  (2xx 0, 3xx 0, 4xx 0, 5xx 0, no response 0)\n" in text
    assert "  urls       0  (done 0, failed 0, queued 0, skipped 0)\n" in text
    assert "  duration   0.0 s\n" in text
    assert text.endswith("  runs       none\n")


def test_many_runs_show_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    prepare(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO runs (started_at, ended_at, outcome, seeds) VALUES (?, ?, 'limit', '')",
            [(f"2026-11-25T00:{m:02d}:00Z", f"2026-11-25T00:{m:02d}:30Z") for m in range(12)],
        )
    stats = read_stats(path)
    assert stats.duration == 12 * 30
    lines = format_stats(stats).splitlines()
    assert "  duration   6 min 00 s   0.0 pages/s" in lines
    runs = lines[lines.index("  runs       (2 older runs not shown)") :]
    assert len(runs) == 11
    assert runs[1].strip().startswith("3: ")


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        pytest.param({"bytes": 999}, "  bytes      999 B", id="bytes"),
        pytest.param({"bytes": 1500}, "  bytes      1.5 kB  (1500 bytes)", id="kilobytes"),
        pytest.param(
            {"bytes": 3 * 10**9}, "  bytes      3.0 GB  (3000000000 bytes)", id="gigabytes"
        ),
        pytest.param({"duration": 59.94}, "  duration   59.9 s   0.2 pages/s", id="seconds"),
        pytest.param(
            {"duration": 3725.0}, "  duration   1 h 02 min 05 s   0.0 pages/s", id="hours"
        ),
    ],
)
def test_format_units(db_path: Path, changes: dict[str, float], line: str) -> None:
    stats = dataclasses.replace(read_stats(db_path), **changes)  # type: ignore[arg-type]
    assert line in format_stats(stats).splitlines()


def test_format_hosts(db_path: Path) -> None:
    lines = format_hosts(db_path).splitlines()
    header = [c.strip() for c in lines[0].split("|")]
    assert header == [
        "host", "robots", "robots fetched", "delay", "crawl-delay", "requests", "errors",
        "min gap ms", "pages",
    ]  # fmt: skip
    rows = {cells[0]: cells for cells in ([c.strip() for c in ln.split("|")] for ln in lines[2:-1])}
    assert list(rows) == ["a.test", "b.test", "c.test"]  # most pages first
    for host, cells in rows.items():
        expected = scalar(db_path, f"SELECT count(*) FROM pages WHERE host = '{host}'")
        assert int(cells[-1]) == expected
    assert rows["a.test"][1:] == [
        "ok", "2026-11-25T00:00:00.500Z", "1 s (config)", "", "9", "0", "1003", "7",
    ]  # fmt: skip
    assert rows["b.test"][1:] == ["", "", "", "", "0", "0", "", "6"]  # pages, no hosts row
    assert rows["c.test"][3:6] == ["2.5 s (backoff)", "5 s", "3"]
    assert lines[-1] == "(3 hosts)"


@pytest.mark.parametrize("reader", [read_stats, format_hosts])
def test_not_a_crawl_database(tmp_path: Path, reader: object) -> None:
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE pages (x)")
    with pytest.raises(UsageError, match="not a crawl database") as info:
        reader(other)  # type: ignore[operator]
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="no database"):
        reader(tmp_path / "missing.db")  # type: ignore[operator]


def test_stats_is_a_frozen_dataclass(db_path: Path) -> None:
    stats = read_stats(db_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.pages = 0  # type: ignore[misc]
    assert isinstance(stats, Stats)
