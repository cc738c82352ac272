"""What bench/perf.py's runs measured, the table it prints, and the targets each site checks.

A site's runs are kept by peer key (`crawler`, `crawler-text`, `scrapy`, `crawlee`, `raw`,
`floor`, `wget`); the table shows the median of the rounds, and `verdicts` turns issue 6's and
issue 22's targets into PASS/FAIL lines. Targets on CPU per page compare medians of interleaved
rounds.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

DOC_CORPORA = ("pgdocs", "django")  # issue 22's corpora: the text and peer ratios apply there
POLITE_DELAY = 0.05
MILLION_STEPS = (340, 3_400)  # pages fetched: 100,000 and 1,000,000 URLs queued
LABELS = {
    "crawler": "ours, text off",
    "crawler-text": "ours, text on",
    "scrapy": "Scrapy",
    "crawlee": "crawlee-python",
    "raw": "raw aiohttp loop",
    "floor": "floor: aiohttp + lexbor links",
    "wget": "wget",
}
OURS = ("crawler", "crawler-text")


@dataclass
class Run:
    """What one peer did in one round."""

    pages: int  # requests for pages (robots.txt aside), from nginx's log
    distinct: int
    missing: int  # ground-truth pages never requested
    extra: int  # requested, not in the ground truth
    wall: float
    cpu: float  # user + sys of the whole process tree, helpers included
    rss_mb: float  # peak of the whole process tree's summed VmRSS
    exit: int
    min_gap_ms: float | None  # smallest start-to-start gap between two requests to one host
    lag_p99_ms: float | None = None
    lag_max_ms: float | None = None
    paced: float | None = None  # polite run: pages/s while every host had work, / the bound

    @property
    def twice(self) -> int:
        return self.pages - self.distinct

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(self.pages, 1)

    @property
    def rate(self) -> float:
        return self.pages / self.wall if self.wall else 0.0


@dataclass
class SiteRuns:
    name: str
    title: str
    runs: dict[str, list[Run]] = field(default_factory=lambda: defaultdict(list))

    def median(self, peer: str, value: Callable[[Run], float | None]) -> float | None:
        values = [v for v in (value(r) for r in self.runs.get(peer, [])) if v is not None]
        return statistics.median(values) if values else None

    def cpu_ms(self, peer: str) -> float:
        return self.median(peer, lambda r: r.cpu_ms) or 0.0


# ------------------------------------------------------------------------------------- table


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


COLUMNS: list[tuple[str, Callable[[Run], float | None], str]] = [
    ("pages", lambda r: r.pages, ".0f"),
    ("missing", lambda r: r.missing, ".0f"),
    ("extra", lambda r: r.extra, ".0f"),
    ("twice", lambda r: r.twice, ".0f"),
    ("wall s", lambda r: r.wall, ".2f"),
    ("CPU s", lambda r: r.cpu, ".2f"),
    ("CPU ms/page", lambda r: r.cpu_ms, ".2f"),
    ("pages/s", lambda r: r.rate, ".0f"),
    ("tree peak RSS MB", lambda r: r.rss_mb, ".0f"),
    ("min gap ms", lambda r: r.min_gap_ms, ".1f"),
    ("lag p99 ms", lambda r: r.lag_p99_ms, ".1f"),
    ("lag max ms", lambda r: r.lag_max_ms, ".1f"),
]


def site_table(site: SiteRuns) -> list[str]:
    rounds = max(len(runs) for runs in site.runs.values())
    lines = [
        f"**{site.title}** (median of {rounds} rounds)",
        "",
        "| peer | " + " | ".join(name for name, _, _ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for peer in site.runs:
        cells = [fmt(site.median(peer, value), spec) for _, value, spec in COLUMNS]
        lines.append(f"| {LABELS.get(peer, peer)} | " + " | ".join(cells) + " |")
    return lines


def report(results: list[SiteRuns], env_line: str) -> tuple[str, bool]:
    """The tables and verdicts of every site, and whether every target held."""
    lines = [f"Machine: {env_line}.", ""]
    ok = True
    for site in results:
        lines += site_table(site)
        lines.append("")
        for text, held in verdicts(site):
            ok = ok and held
            lines.append(f"- {'PASS' if held else 'FAIL'}: {text}")
        lines.append("")
    return "\n".join(lines), ok


# ---------------------------------------------------------------------------------- verdicts

Verdicts = list[tuple[str, bool]]


def verdicts(site: SiteRuns) -> Verdicts:
    """The issues' targets that this site's runs can check, and whether each held."""
    if site.name == "million":
        return million_verdicts(site)
    checks: Verdicts = []
    for peer in OURS:
        checks += exact_and_lag(site, peer)
    if not site.runs.get("crawler"):
        return checks
    checks += peer_ratios(site)
    if site.name in DOC_CORPORA:
        checks += text_and_memory(site)
    elif site.name == "multihost":
        rss = max(r.rss_mb for r in site.runs["crawler"])
        checks.append((f"ours, text off: tree peak RSS <= 100 MB ({rss:.0f})", rss <= 100))
    if site.name == "polite":
        checks += polite_verdicts(site)
    return checks


def exact_and_lag(site: SiteRuns, peer: str) -> Verdicts:
    runs = site.runs.get(peer)
    if not runs:
        return []
    name = LABELS[peer]
    exact = all(r.missing == 0 and r.extra == 0 and r.twice == 0 for r in runs)
    lag = all((r.lag_p99_ms or 0) <= 20 for r in runs)
    return [
        (f"{name}: same pages as the ground truth, none twice, in every round", exact),
        (f"{name}: event-loop lag p99 <= 20 ms in every round", lag),
    ]


def peer_ratios(site: SiteRuns) -> Verdicts:
    """Text off against Scrapy (everywhere), crawlee (the documentation corpora), the raw
    loop and wget (the 64 hosts)."""
    checks: Verdicts = []
    ours = site.cpu_ms("crawler")
    rate = site.median("crawler", lambda r: r.rate) or 0.0
    if site.runs.get("scrapy"):
        times = site.cpu_ms("scrapy") / max(ours, 1e-9)
        rounds = per_round(site, "scrapy", "crawler", ".1f") + floor_against(site, "scrapy")
        checks.append(
            (f"text off: CPU/page <= 1/10 of Scrapy's ({times:.1f}x less{rounds})", times >= 10)
        )
    if site.runs.get("crawlee") and site.name in DOC_CORPORA:
        times = site.cpu_ms("crawlee") / max(ours, 1e-9)
        rounds = per_round(site, "crawlee", "crawler", ".1f") + floor_against(site, "crawlee")
        checks.append(
            (
                f"text off: CPU/page >= 7x less than crawlee-python's ({times:.1f}x{rounds})",
                times >= 7,
            )
        )
    if site.runs.get("raw"):
        raw = site.median("raw", lambda r: r.rate) or 0.0
        checks.append(
            (
                f"text off: pages/s >= 50% of the raw aiohttp loop's ({100 * rate / raw:.0f}%)",
                rate >= raw / 2,
            )
        )
    if site.runs.get("wget") and site.name == "multihost":
        wget = site.median("wget", lambda r: r.rate) or 0.0
        checks.append((f"text off: pages/s >= wget's ({rate / wget:.1f}x)", rate >= wget))
    return checks


def floor_against(site: SiteRuns, peer: str) -> str:
    """How far under `peer` the floor itself is ("; the floor, aiohttp + lexbor links alone,
    0.52 ms: 12.2x less"): where that is short of a target, no crawler on these libraries
    meets it. Empty without a floor run."""
    floor = site.cpu_ms("floor")  # 0.0 without a floor run
    if floor <= 0:
        return ""
    times = site.cpu_ms(peer) / floor
    return f"; the floor, aiohttp + lexbor links alone, {floor:.2f} ms: {times:.1f}x less"


def per_round(site: SiteRuns, peer: str, ours: str, spec: str) -> str:
    """`peer`'s CPU a page over `ours`, round by round ("; rounds 1.9, 2.1, 2.0"): the verdict
    is on the medians, and a ratio the rounds put on both sides of its line is within the
    machine's noise. Empty for fewer than two rounds."""
    pairs = list(zip(site.runs.get(peer, []), site.runs.get(ours, []), strict=False))
    if len(pairs) < 2:
        return ""
    ratios = (theirs.cpu_ms / max(mine.cpu_ms, 1e-9) for theirs, mine in pairs)
    return "; rounds " + ", ".join(format(ratio, spec) for ratio in ratios)


def text_and_memory(site: SiteRuns) -> Verdicts:
    """On a documentation corpus: text on costs at most 2x text off a page, and the whole
    process tree stays under 150 MB with and without text."""
    checks: Verdicts = []
    if site.runs.get("crawler-text"):
        times = site.cpu_ms("crawler-text") / max(site.cpu_ms("crawler"), 1e-9)
        rounds = per_round(site, "crawler-text", "crawler", ".2f")
        checks.append((f"text on: CPU/page <= 2x text off's ({times:.2f}x{rounds})", times <= 2))
    for peer in OURS:
        if site.runs.get(peer):
            rss = max(r.rss_mb for r in site.runs[peer])
            checks.append((f"{LABELS[peer]}: tree peak RSS < 150 MB ({rss:.0f})", rss < 150))
    return checks


def polite_verdicts(site: SiteRuns) -> Verdicts:
    crawler = site.runs["crawler"]
    paced = site.median("crawler", lambda r: r.paced) or 0.0
    gap = min(r.min_gap_ms or 0 for r in crawler)
    # nginx logs times in whole milliseconds: a start time is known to +-1 ms, a gap to +-2.
    floor = 1000 * POLITE_DELAY - 2
    return [
        (
            f">= 80% of the politeness bound while hosts have work ({100 * paced:.0f}%)",
            paced >= 0.8,
        ),
        (f"no gap below the delay ({gap:.1f} ms, logged to the ms)", gap >= floor),
    ]


def million_verdicts(site: SiteRuns) -> Verdicts:
    small, large = (site.runs[million_label(pages)] for pages in MILLION_STEPS)
    if not small or not large:
        return []
    every = small + large
    low, high = max(r.rss_mb for r in small), max(r.rss_mb for r in large)
    return [
        (
            "the first pages of a breadth-first crawl, none twice",
            all(r.extra == 0 and r.twice == 0 for r in every),
        ),
        (
            "event-loop lag p99 <= 20 ms in every round",
            all((r.lag_p99_ms or 0) <= 20 for r in every),
        ),
        (f"tree peak RSS <= 150 MB with 1,000,000 URLs queued ({high:.0f})", high <= 150),
        (
            f"flat: 10x the queued URLs, tree peak RSS {low:.0f} -> {high:.0f} MB (<= +20%)",
            high <= low * 1.2,
        ),
    ]


def million_label(pages: int) -> str:
    return f"crawler, {pages * 300:,} queued"
