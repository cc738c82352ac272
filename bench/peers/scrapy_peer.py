# mypy: ignore-errors
# This file runs in Scrapy's own venv (bench/.venv-scrapy); the project's mypy cannot see Scrapy,
# which in any case ships only partial types.
"""Scrapy as a peer: a CrawlSpider with the crawler's scope and settings, unthrottled.

    PY=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "bench"); \
        from peers import scrapy_python; print(scrapy_python())')
    $PY bench/peers/scrapy_peer.py JOB

JOB is the peers' JSON job file (`seeds`, `allowed_hosts`, `concurrency`, `obey_robots`, `out`,
`user_agent`; `urls_file` does not apply). Run by `CrawlerProcess` from this plain script, no
Scrapy project. Every response, 404s included, becomes an item {url, status, title, body} in
`out/scrapy.jsonl` (JSON Lines), so bodies are kept as the crawler keeps them in SQLite.
Prints one line, `fetched N in S s; M items` (N counts robots.txt responses too); exit 1 if
the crawl did not finish normally.

Settings are the crawler's where Scrapy has them: `concurrency` requests in all and per host
(no per-host cap: the benchmark measures unthrottled CPU cost), no delay, no AutoThrottle,
robots.txt as `obey_robots` says, 30 s timeout, 2 retries, at most 5 redirects, no cookies, no
HTTP cache, no depth limit, no meta refresh.

How it differs from the crawler:
- scope: `LinkExtractor(allow_domains=...)` compares the whole netloc, port included, so it
  rejects every link of a site on a non-default port (`127.0.1.1:8481` is not `127.0.1.1`).
  The host check is therefore `in_scope` (host or a subdomain of it, port ignored), and the
  spider's `allowed_domains` (matched on the host name by OffsiteMiddleware) keeps redirect
  targets in scope: an out-of-scope redirect target is not fetched;
- `rel=nofollow` links are dropped in `in_scope`; `<meta name=robots content=nofollow>` and
  `X-Robots-Tag` are not honoured (Scrapy has no such rule), so links on such pages are followed;
- redirects are followed inside one request (RedirectMiddleware), the 3xx itself is no item;
- dedup is Scrapy's request fingerprint (canonical URL: fragment dropped, percent-encoding
  and query order normalized), in memory; the seeds are sent without `dont_filter`, so a link
  back to a seed does not fetch it a second time (Scrapy's default start requests would);
- links are only extracted from `HtmlResponse`s; bodies over 1 GiB are dropped, not truncated.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import CrawlerProcess
from scrapy.http import TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule


class PeerSpider(CrawlSpider):
    name = "peer"
    rules = (
        Rule(
            # deny_extensions=[]: the crawler fetches every link, .pdf and .zip alike.
            LinkExtractor(tags=("a", "area"), attrs=("href",), deny_extensions=[]),
            callback="parse_page",
            follow=True,
            process_links="in_scope",
        ),
    )

    def __init__(self, job, *args, **kwargs):
        self.hosts = tuple(host.lower() for host in job["allowed_hosts"])
        self.suffixes = tuple("." + host for host in self.hosts)
        self.allowed_domains = list(self.hosts)  # OffsiteMiddleware: redirect targets
        self.start_urls = list(job["seeds"])
        super().__init__(*args, **kwargs)

    async def start(self):
        for url in self.start_urls:
            yield Request(url)  # no dont_filter: a seed's fingerprint joins the dedup set

    def in_scope(self, links):
        kept = []
        for link in links:
            host = urlsplit(link.url).hostname or ""
            if not link.nofollow and (host in self.hosts or host.endswith(self.suffixes)):
                kept.append(link)
        return kept

    def parse_start_url(self, response, **kwargs):
        return self.parse_page(response)

    def parse_page(self, response):
        if isinstance(response, TextResponse):
            title, body = response.css("title::text").get(), response.text
        else:  # a PDF, an image: latin-1 keeps every byte
            title, body = None, response.body.decode("latin-1")
        yield {"url": response.url, "status": response.status, "title": title, "body": body}


def settings(job):
    concurrency = int(job["concurrency"])
    feed = (Path(job["out"]) / "scrapy.jsonl").resolve()
    return {
        "LOG_LEVEL": "WARNING",
        "USER_AGENT": job["user_agent"],
        "ROBOTSTXT_OBEY": bool(job["obey_robots"]),
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "DEPTH_LIMIT": 0,
        "REDIRECT_ENABLED": True,
        "REDIRECT_MAX_TIMES": 5,  # fetch.max_redirects
        "METAREFRESH_ENABLED": False,  # the crawler does not follow <meta http-equiv=refresh>
        "DOWNLOAD_TIMEOUT": 30,  # fetch.timeout
        "RETRY_TIMES": 2,  # fetch.retries
        "HTTPERROR_ALLOW_ALL": True,  # 404 pages are items, as the crawler stores them
        "FEEDS": {feed.as_uri(): {"format": "jsonlines", "encoding": "utf-8", "overwrite": True}},
    }


def main(argv):
    if len(argv) != 2:
        print("usage: scrapy_peer.py JOB", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[1]).read_text())
    Path(job["out"]).mkdir(parents=True, exist_ok=True)
    process = CrawlerProcess(settings(job))
    crawler = process.create_crawler(PeerSpider)
    process.crawl(crawler, job=job)
    started = time.monotonic()
    process.start()
    stats = crawler.stats
    print(
        f"fetched {stats.get_value('response_received_count', 0)} in "
        f"{time.monotonic() - started:.3f} s; {stats.get_value('item_scraped_count', 0)} items"
    )
    return 0 if stats.get_value("finish_reason") == "finished" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
