"""The test kit: one way to build a local site, one config builder, one way to run the CLI.

Adopting it in a test file:

    from kit import HostPlan, Page, build_config, make_site, run_cli_async, write_config

Sites (kit.site). `make_site({"a.test": HostPlan(pages=5, routes={"/x": Page("<a href=/y>")})})`
serves virtual hosts by Host header ("*" answers for any host), with robots.txt, a tree of
pages /p/{i}, /status/{n}, /redirect/{n}, /retry-after/{s}, /slow/{s}, per-path `Page`s
(body, status, headers, sleep; "{port}" filled in) or handlers. Serve it with the
`aiohttp_server` fixture; `server.app[SITE]` is the site, `server.app[LOG]` its `RequestLog`.
Another aiohttp app records into the same log after `record_requests(app)`. A `Request` holds
host, path (with query), method, headers, the server's `start`/`end` (time.monotonic()) and
the answer's `status`; `RequestLog` has `paths()`, `hits(host)`, `by_host()`, and waits:
`arrived(path)`, `seen(count)`, `wait_for(predicate)`. `min_gap` and `max_in_flight` measure
pacing.

Configs (kit.config). `build_config(tmp_path, seeds, hosts=(...), crawl={...}, ...)` returns a
Config; `write_config(path, seeds, hosts=(...), ...)` writes the same as TOML for the CLI;
`write_demo_config(folder, port, delay=..., max_pages=...)` one for the demo site.
Defaults: no delay, timeout 5, no retries, `hosts` resolved to 127.0.0.1, `db="crawl.db"`
or `pg_url=...`; a key set to None falls back to the crawler's default. The `make_config`
fixture (conftest.py) is `build_config` on the test's tmp_path, `hosts` defaulting to the demo's.

The CLI (kit.cli). `run_cli(*args)` (sync) / `await run_cli_async(*args)` run a real
`python -m crawler` and return `Ran(code, out, err)`, a NamedTuple (hang guard: `seconds`);
`async with started_cli(*args) as process:` to signal or kill it mid-run, then
`await finish(process)` (`start_cli` when the process outlives a block); `prelude="..."` runs
code first (patch a constant). `run_in_process(capsys, *args)` calls cli.main in the test's
process (`run_in_thread`: in a worker thread), returning a `Ran` too.

Also: `kit.proxy.forward_proxy()`, a logging forward proxy (CONNECT too); `kit.tls.trusted_ca`,
a CA of the test's own and an https server context it signed; `kit.browser`, Chromium driven.
"""

from __future__ import annotations

from kit.cli import (
    Ran,
    cli_argv,
    finish,
    run_cli,
    run_cli_async,
    run_in_process,
    run_in_thread,
    start_cli,
    started_cli,
)
from kit.config import build_config, config_sections, to_toml, write_config, write_demo_config
from kit.site import (
    LOG,
    SITE,
    HostPlan,
    Page,
    Request,
    RequestLog,
    Site,
    html,
    links,
    make_site,
    max_in_flight,
    min_gap,
    record_requests,
    redirect,
)

__all__ = [
    "LOG",
    "SITE",
    "HostPlan",
    "Page",
    "Ran",
    "Request",
    "RequestLog",
    "Site",
    "build_config",
    "cli_argv",
    "config_sections",
    "finish",
    "html",
    "links",
    "make_site",
    "max_in_flight",
    "min_gap",
    "record_requests",
    "redirect",
    "run_cli",
    "run_cli_async",
    "run_in_process",
    "run_in_thread",
    "start_cli",
    "started_cli",
    "to_toml",
    "write_config",
    "write_demo_config",
]
