"""`crawler serve`'s `/metrics`: a prometheus_client Collector that reads the crawl database on
each scrape (through a reader of its own), in the Prometheus naming rules: one prefix
(`crawler_`), base units (bytes, seconds), counters ending in `_total`, and no label that
takes one value per host or URL (status classes, URL states and skip reasons are few).

    crawler_pages_total{status_class}   counter  pages fetched (1xx … 5xx, other, none)
    crawler_urls{state}                 gauge    URLs by state (done, failed, queued, skipped)
    crawler_skipped_total{reason}       counter  URLs skipped, by reason
    crawler_bytes_total                 counter  body bytes fetched
    crawler_errors_total                counter  requests that ended with an error
    crawler_hosts                       gauge    hosts seen
    crawler_hosts_crawling              gauge    hosts a live process holds now
    crawler_processes                   gauge    crawl processes running now
    crawler_running                     gauge    1 while a process runs, else 0
    crawler_event_loop_lag_p99_seconds  gauge    the worst p99 of the running processes
    crawler_event_loop_lag_max_seconds  gauge    the worst lag of the running processes

Error handling: a read that fails raises out of `collect` (a CrawlerError): `serve` answers 503.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..storage import Reader
from .live_view import NO_RESPONSE

MILLISECONDS = 1000.0


class CrawlCollector(Collector):
    """The crawl's figures, read afresh on each scrape from `open_reader()`'s reader."""

    def __init__(self, open_reader: Callable[[], AbstractContextManager[Reader]]) -> None:
        self._open_reader = open_reader

    def collect(self) -> Iterator[Metric]:
        with self._open_reader() as reader:
            counts = reader.counts()
            runs = reader.live_runs()
            held = reader.held_hosts()
        pages = CounterMetricFamily(
            "crawler_pages", "Pages fetched, by status class", labels=["status_class"]
        )
        for name, n in counts.status_classes.items():
            pages.add_metric([NO_RESPONSE if name == "no response" else name], n)
        urls = GaugeMetricFamily("crawler_urls", "URLs discovered, by state", labels=["state"])
        for state, n in counts.url_states.items():
            urls.add_metric([state], n)
        skipped = CounterMetricFamily(
            "crawler_skipped", "URLs skipped, by reason", labels=["reason"]
        )
        for reason, n in counts.skip_reasons.items():
            skipped.add_metric([reason], n)
        yield from (pages, urls, skipped)
        yield CounterMetricFamily("crawler_bytes", "Body bytes fetched", value=counts.bytes)
        yield CounterMetricFamily(
            "crawler_errors", "Requests that ended with an error", value=counts.errors
        )
        yield GaugeMetricFamily("crawler_hosts", "Hosts seen", value=counts.hosts)
        yield GaugeMetricFamily(
            "crawler_hosts_crawling", "Hosts a running process holds now", value=len(held)
        )
        yield GaugeMetricFamily("crawler_processes", "Crawl processes running now", value=len(runs))
        yield GaugeMetricFamily(
            "crawler_running", "1 while a crawl process runs", value=int(bool(runs))
        )
        for stat, values in (
            ("p99", [r.lag_p99_ms for r in runs]),
            ("max", [r.lag_max_ms for r in runs]),
        ):
            measured = [v for v in values if v is not None]
            yield GaugeMetricFamily(
                f"crawler_event_loop_lag_{stat}_seconds",
                f"Event-loop lag ({stat}) of the running process that lags most",
                value=max(measured, default=0.0) / MILLISECONDS,
            )
