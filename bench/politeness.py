"""Politeness at scale, measured from the server's own log.

Serves many virtual hosts (the test kit's multi-host site, tests/kit/site.py) from a separate
process, crawls them all with the `crawler` command, and checks every request the server saw:
robots.txt first on each host, no disallowed path, no two requests to one host closer than the
delay, never more than one open at once; then compares the request rate with the politeness
bound (hosts / delay).

    .venv/bin/python bench/politeness.py --hosts 60 --pages 30 --delay 0.2 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kit import SITE, HostPlan, Request, make_site, max_in_flight, min_gap  # noqa: E402
from serving import free_port, serve_until_terminated, wait_for  # noqa: E402


def serve(port: int, hosts: list[str], pages: int, log_path: str) -> None:
    """Run the site until SIGTERM, then write its request log as JSON lines."""
    plans = {h: HostPlan(pages=pages, extra_links=("/private/a", "/private/b")) for h in hosts}
    app = make_site(plans)

    serve_until_terminated(app, port)
    with open(log_path, "w", encoding="utf-8") as out:
        for hit in app[SITE].log:
            out.write(json.dumps([hit.host, hit.path, hit.start, hit.end, hit.user_agent]) + "\n")


def write_config(folder: Path, port: int, hosts: list[str], args: argparse.Namespace) -> Path:
    resolve = ", ".join(f'"{h}" = "127.0.0.1"' for h in hosts)
    seeds = ", ".join(f'"http://{h}:{port}/p/0"' for h in hosts)
    path = folder / "config.toml"
    path.write_text(
        f"""[crawl]
seeds = [{seeds}]
concurrency = {args.concurrency}
[politeness]
delay = {args.delay}
per_host_concurrency = 1
[fetch]
resolve = {{ {resolve} }}
[storage]
path = "crawl.db"
""",
        encoding="utf-8",
    )
    return path


def report(hits: list[Request], hosts: list[str], args: argparse.Namespace, seconds: float) -> bool:
    by_host: dict[str, list[Request]] = {h: [] for h in hosts}
    for hit in hits:
        by_host[hit.host].append(hit)
    robots_late = [h for h, hs in by_host.items() if not hs or hs[0].path != "/robots.txt"]
    disallowed = [hit for hit in hits if hit.path.startswith("/private/")]
    short_gaps = [h for h, hs in by_host.items() if min_gap(hs) < args.delay]
    overlapping = [h for h, hs in by_host.items() if max_in_flight(hs) > 1]
    pages = sum(1 for hit in hits if hit.path.startswith("/p/"))
    starts = [hit.start for hit in hits]
    span = max(starts) - min(starts) + args.delay
    rate = len(hits) / span
    bound = len(hosts) / args.delay
    smallest = min(min_gap(hs) for hs in by_host.values())
    print(f"hosts                      {len(hosts)}")
    print(f"requests (robots + pages)  {len(hits)}  (pages {pages})")
    print(f"robots.txt not first       {len(robots_late)}")
    print(f"disallowed requested       {len(disallowed)}")
    print(f"hosts with a gap < delay   {len(short_gaps)}  (smallest gap {smallest * 1000:.1f} ms)")
    print(f"hosts with > 1 in flight   {len(overlapping)}")
    print(f"crawl wall time            {seconds:.2f} s")
    print(f"requests/s while working   {rate:.1f}  (bound {bound:.1f}: {rate / bound:.1%})")
    expected = len(hosts) * (args.pages + 1)
    ok = not (robots_late or disallowed or short_gaps or overlapping) and len(hits) == expected
    print("result                     " + ("OK" if ok else "VIOLATIONS OR MISSING PAGES"))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=60)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    hosts = [f"h{n}.bench.test" for n in range(args.hosts)]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log_path = folder / "requests.jsonl"
        server = multiprocessing.Process(
            target=serve, args=(port, hosts, args.pages, str(log_path))
        )
        server.start()
        try:
            wait_for(port)
            config = write_config(folder, port, hosts, args)
            started = time.monotonic()
            crawler = [sys.executable, "-m", "crawler", "crawl", str(config), "--quiet"]
            subprocess.run(crawler, check=True)
            seconds = time.monotonic() - started
        finally:
            server.terminate()
            server.join(10)
        hits = [Request.from_log(*json.loads(line)) for line in log_path.read_text().splitlines()]
    return 0 if report(hits, hosts, args, seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
