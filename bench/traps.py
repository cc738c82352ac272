"""Every trap of the hostile test site (tests/hostile.py), crawled in one run.

The site runs in its own process; the real `crawler` command crawls it from `/`, which links to
every trap. Checks: exit 0, every trap URL has a row with a status, an error or a skip reason,
no stored body above max_bytes, `PRAGMA integrity_check` ok; prints wall time and peak RSS.

    .venv/bin/python bench/traps.py
"""

from __future__ import annotations

import multiprocessing
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from serving import free_port, serve_until_terminated, wait_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile import HOME_LINKS, MB, make_hostile_app, trap_url  # noqa: E402

MAX_BYTES = 5 * MB


def serve(port: int) -> None:
    serve_until_terminated(make_hostile_app(), port)


def check(db: Path, port: int) -> bool:
    with closing(sqlite3.connect(db)) as conn:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        biggest = conn.execute("SELECT coalesce(max(length(body)), 0) FROM pages").fetchone()[0]
        print(f"integrity_check           {'ok' if ok else 'FAILED'}")
        print(f"largest stored body       {biggest} bytes (max_bytes {MAX_BYTES})")
        pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
        print(f"pages                     {pages}")
        missing = []
        for n, href in enumerate(HOME_LINKS):
            url = trap_url(n, href, port)
            page = conn.execute(
                "SELECT status, error, truncated FROM pages WHERE url = ?", (url,)
            ).fetchone()
            skipped = conn.execute(
                "SELECT reason FROM urls WHERE url = ? AND state = 'skipped'", (url,)
            ).fetchone()
            if page is not None:
                status, error, truncated = page
                what = f"status {status}" if status is not None else f"error {error!r}"
                print(f"  {href[:40]:40}  {what}{'  truncated' if truncated else ''}")
            elif skipped is not None:
                print(f"  {href[:40]:40}  skipped: {skipped[0]}")
            else:
                missing.append(href)
                print(f"  {href[:40]:40}  NO ROW")
    return ok and biggest <= MAX_BYTES and not missing


def main() -> int:
    port = free_port()
    server = multiprocessing.Process(target=serve, args=(port,))
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = folder / "config.toml"
            hosts = ["evil.test"] + [f"t{n}.evil.test" for n in range(len(HOME_LINKS))]
            resolve = ", ".join(f'"{host}" = "127.0.0.1"' for host in hosts)
            config.write_text(
                f'[crawl]\nseeds = ["http://evil.test:{port}/"]\nmax_pages = 3000\n'
                'allowed_domains = ["evil.test"]\n'
                f"[politeness]\ndelay = 0\nper_host_concurrency = 8\n"
                f"[fetch]\ntimeout = 3\nmax_bytes = {MAX_BYTES}\nresolve = {{ {resolve} }}\n",
                encoding="utf-8",
            )
            wait_for(port)  # the site builds its bombs first
            started = time.monotonic()
            code = subprocess.run(
                [sys.executable, "-m", "crawler", "crawl", str(config), "--quiet"], check=False
            ).returncode
            seconds = time.monotonic() - started
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"exit code                 {code}")
            print(f"wall time                 {seconds:.1f} s")
            print(f"peak RSS of the crawler   {peak:.1f} MB")
            good = check(folder / "crawl.db", port)
    finally:
        server.terminate()
        server.join(10)
    return 0 if good and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
