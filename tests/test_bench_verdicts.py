"""bench/verdicts.py: `make bench` fails (exit 1) when one of issue 22's ratios misses.

The runs here are made up; the benchmark's own measuring is bench/perf.py's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# bench/ holds scripts, not a package: its modules import each other by their bare names.
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # last: shadows nothing
import verdicts
from verdicts import Run, SiteRuns


def run(cpu_ms: float, rss_mb: float = 80.0, pages: int = 1000, missing: int = 0) -> Run:
    return Run(
        pages=pages,
        distinct=pages,
        missing=missing,
        extra=0,
        wall=1.0,
        cpu=cpu_ms * pages / 1000,
        rss_mb=rss_mb,
        exit=0,
        min_gap_ms=None,
        lag_p99_ms=5.0,
    )


def docs_site(**cpu_ms: float) -> SiteRuns:
    """A documentation-corpus site with three rounds of each peer, CPU ms a page as given."""
    site = SiteRuns("django", "Django docs")
    for peer, ms in cpu_ms.items():
        key = peer.replace("_", "-")
        site.runs[key] = [run(ms * factor) for factor in (0.9, 1.0, 1.5)]  # median: ms
    return site


def failed(site: SiteRuns) -> list[str]:
    return [text for text, held in verdicts.verdicts(site) if not held]


def test_every_ratio_held_passes() -> None:
    site = docs_site(crawler=2.0, crawler_text=4.0, scrapy=20.0, crawlee=14.0)
    assert failed(site) == []
    _, ok = verdicts.report([site], "test machine")
    assert ok


@pytest.mark.parametrize(
    ("cpu_ms", "missed"),
    [
        pytest.param(
            {"crawler": 2.0, "crawler_text": 4.0, "scrapy": 19.9, "crawlee": 14.0},
            "1/10 of Scrapy's",
            id="scrapy",
        ),
        pytest.param(
            {"crawler": 2.0, "crawler_text": 4.0, "scrapy": 20.0, "crawlee": 13.9},
            "7x less than crawlee",
            id="crawlee",
        ),
        pytest.param(
            {"crawler": 2.0, "crawler_text": 4.1, "scrapy": 20.0, "crawlee": 14.0},
            "2x text off",
            id="text",
        ),
    ],
)
def test_a_missed_ratio_fails_the_run(cpu_ms: dict[str, float], missed: str) -> None:
    site = docs_site(**cpu_ms)
    [text] = failed(site)
    assert missed in text
    _, ok = verdicts.report([site], "test machine")
    assert not ok


def test_each_rounds_ratio_is_shown_beside_the_medians() -> None:
    site = docs_site(crawler=2.0, crawler_text=4.0, scrapy=20.0, crawlee=14.0)
    site.runs["crawler-text"] = [run(3.6), run(4.4), run(3.0)]  # median 3.6: 1.80x
    texts = [text for text, _ in verdicts.verdicts(site)]
    assert "text on: CPU/page <= 2x text off's (1.80x; rounds 2.00, 2.20, 1.00)" in texts
    assert "text off: CPU/page <= 1/10 of Scrapy's (10.0x less; rounds 10.0, 10.0, 10.0)" in texts


def test_the_floor_is_shown_against_the_peers_and_judges_nothing() -> None:
    site = docs_site(crawler=2.0, crawler_text=4.0, scrapy=20.0, crawlee=14.0, floor=2.5)
    texts = [text for text, _ in verdicts.verdicts(site)]
    assert (
        "text off: CPU/page <= 1/10 of Scrapy's (10.0x less; rounds 10.0, 10.0, 10.0;"
        " the floor, aiohttp + lexbor links alone, 2.50 ms: 8.0x less)"
    ) in texts
    assert any(
        text.endswith("the floor, aiohttp + lexbor links alone, 2.50 ms: 5.6x less)")
        for text in texts
    )
    assert failed(site) == []  # a floor above a target is shown, not judged


def test_the_tree_memory_and_the_page_set_are_checked_for_text_on_too() -> None:
    site = docs_site(crawler=2.0, crawler_text=4.0, scrapy=20.0, crawlee=14.0)
    site.runs["crawler-text"][1] = run(4.0, rss_mb=150.0)
    site.runs["crawler-text"][2] = run(4.0, missing=1)
    assert sorted(failed(site)) == [
        "ours, text on: same pages as the ground truth, none twice, in every round",
        "ours, text on: tree peak RSS < 150 MB (150)",
    ]
