# mypy: ignore-errors
# This file runs in crawlee's own venv (bench/.venv-crawlee); the project's mypy cannot see it.
"""crawlee-python as a peer: its ParselCrawler with the crawler's scope and settings, unthrottled.

    PY=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "bench"); \
        from peers import crawlee_python; print(crawlee_python())')
    $PY bench/peers/crawlee_peer.py JOB

JOB is the peers' JSON job file (`seeds`, `allowed_hosts`, `concurrency`, `obey_robots`, `out`,
`user_agent`; `urls_file` does not apply). Every response, 404s included, is pushed to
crawlee's default dataset as {url, status, title, body}, so bodies are kept as the crawler keeps
them in SQLite. Storage is crawlee's default, its file-system client (under `out/crawlee`): the
request queue and the dataset persist on disk, as the crawler's frontier and pages do. Prints
one line, `fetched N in S s; M items, F failed` (failed: no response after the retries, e.g. a
link to a port nothing listens on); exit 0 when the crawl ran to its end.

Why ParselCrawler: crawlee's two HTTP crawlers that parse HTML are ParselCrawler (parsel over
lxml, a C parser) and BeautifulSoupCrawler (a tree of Python objects); both extract links the
same way (a CSS selector, then one attribute of each match), and lxml builds its tree at a
fraction of BeautifulSoup's CPU, so Parsel is the cheaper of the two. Its HTTP client is
crawlee's default, impit (no browser).

Settings are the crawler's where crawlee has them: `concurrency` requests at once, fixed
(min = desired = max, so its autoscaling neither waits to grow nor shrinks under CPU load), no
delay, robots.txt as `obey_robots` says (`respect_robots_txt_file`), 2 retries, at most 5
redirects, no depth limit, the job's User-Agent on every request, robots.txt included.

How it differs from the crawler:
- scope: links are extracted with `strategy="all"` and kept when their host is an allowed host
  or a subdomain of one, port ignored (crawlee's strategies compare one page's host, origin or
  domain, none a list of hosts);
- links: `a[href]` and `area[href]` without rel=nofollow (a CSS selector); `<base href>` is
  honoured by crawlee; `<meta name=robots content=nofollow>` is not (crawlee has no such rule);
- robots.txt rules are matched for user-agent `*` (crawlee's `is_allowed` default), not for the
  job's product token, and its Crawl-delay is not obeyed (that needs crawlee's
  `ThrottlingRequestManager`; the benchmark's sites set none);
- dedup is crawlee's unique key: the URL with scheme and host lower-cased, the fragment and
  `utm_` parameters dropped, the query sorted and a trailing slash removed, so `/a/` and `/a`
  are one request: on the 64-host site the 512 folders linked without their slash (301s) are
  never requested once the folder itself was (512 missing);
- redirects are followed inside one request, and robots.txt is asked about the URL requested,
  not the redirect's target: on the 64-host site `/private` (301) leads to the disallowed
  `/private/` on every host (64 extra);
- 4xx responses reach the handler and are kept (`ignore_http_error_status_codes`), and a 401,
  403 or 429 is not taken for a blocked session (`retry_on_blocked=False`), so nothing is
  fetched again with a new session;
- crawlee also samples CPU and memory every second (its autoscaling's system status) and logs
  statistics: its own costs, left on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from crawlee import ConcurrencySettings, service_locator
from crawlee.configuration import Configuration
from crawlee.crawlers import ParselCrawler, ParselCrawlingContext
from crawlee.http_clients import ImpitHttpClient

LINKS = "a[href]:not([rel~=nofollow]), area[href]:not([rel~=nofollow])"


def in_scope(url, hosts, suffixes):
    host = urlsplit(url).hostname or ""
    return host in hosts or host.endswith(suffixes)


def make_crawler(job):
    concurrency = int(job["concurrency"])
    hosts = tuple(host.lower() for host in job["allowed_hosts"])
    suffixes = tuple("." + host for host in hosts)
    config = Configuration(storage_dir=str(Path(job["out"]) / "crawlee"), purge_on_start=True)
    service_locator.set_configuration(config)  # before anything creates a default one
    crawler = ParselCrawler(
        configuration=config,
        http_client=ImpitHttpClient(headers={"user-agent": job["user_agent"]}, max_redirects=5),
        concurrency_settings=ConcurrencySettings(
            min_concurrency=concurrency,
            desired_concurrency=concurrency,
            max_concurrency=concurrency,
        ),
        max_request_retries=2,  # fetch.retries
        respect_robots_txt_file=bool(job["obey_robots"]),
        retry_on_blocked=False,
        ignore_http_error_status_codes=range(400, 500),
        request_handler_timeout=timedelta(seconds=30),  # fetch.timeout
        configure_logging=False,  # main() logs warnings and errors only, as the Scrapy peer does
    )

    @crawler.router.default_handler
    async def handle(context: ParselCrawlingContext) -> None:
        response = context.http_response
        body = await response.read()
        media = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media == "text/html":
            title = context.selector.css("title::text").get()
            text = body.decode("utf-8", errors="replace")
            found = await context.extract_links(selector=LINKS, strategy="all")
            await context.add_requests([r for r in found if in_scope(r.url, hosts, suffixes)])
        else:  # an image, a PDF: latin-1 keeps every byte
            title, text = None, body.decode("latin-1")
        url = context.request.loaded_url or context.request.url
        await context.push_data(
            {"url": url, "status": response.status_code, "title": title, "body": text}
        )

    return crawler


async def crawl(job):
    crawler = make_crawler(job)
    stats = await crawler.run(list(job["seeds"]))
    dataset = await crawler.get_dataset()
    items = (await dataset.get_metadata()).item_count
    return stats.requests_finished, stats.requests_failed, items


def main(argv):
    if len(argv) != 2:
        print("usage: crawlee_peer.py JOB", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[1]).read_text())
    Path(job["out"]).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    started = time.monotonic()
    finished, failed, items = asyncio.run(crawl(job))
    print(
        f"fetched {finished} in {time.monotonic() - started:.3f} s; {items} items, {failed} failed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
