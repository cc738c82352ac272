"""What a crawl needs installed: a crawl that stores no text imports no text extractor
(resiliparse), nor the read side of storage, and one that does but cannot import it ends at
once, with one line and exit 2, before any request; an export to WARC without a working warcio
likewise, before any file. Real `crawler` processes against a loopback server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kit import LOG, HostPlan, Page, RequestLog, make_site, run_cli_async, write_config
from kit.cli import ROOT

PAGES = {
    "/": '<title>Home</title><p>Welcome home.</p><a href="/a">a</a>',
    "/a": "<title>A</title><p>A page about a.</p>",
}
# Run before the crawl: on the way out, print the modules the crawl imported.
PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules))))
"""
# The read side of storage: what the read commands need, and a crawl does not.
READ_SIDE = {
    "crawler.storage.read_contract", "crawler.storage.portable_reads",
    "crawler.storage.live_reads", "crawler.storage.report_reads",
    "crawler.storage.search_syntax", "crawler.storage.sqlite_reads",
}  # fmt: skip


async def _site(aiohttp_server: Any) -> tuple[str, RequestLog]:
    """The pages on a loopback server (no robots.txt): its root URL, and its request log."""
    routes = {path: Page(html) for path, html in PAGES.items()}
    server = await aiohttp_server(make_site({"*": HostPlan(pages=0, robots=None, routes=routes)}))
    return f"http://127.0.0.1:{server.port}/", server.app[LOG]


def _config(folder: Path, seed: str, store_text: bool) -> Path:
    return write_config(
        folder / "config.toml", [seed], hosts=(), storage={"store_text": store_text}
    )


async def test_a_crawl_without_text_imports_no_extractor(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    seed, asked = await _site(aiohttp_server)
    config = _config(tmp_path, seed, store_text=False)

    code, out, err = await run_cli_async("crawl", str(config), "--quiet", prelude=PROBE)

    assert code == 0, err
    imported = set(json.loads(out.splitlines()[-1]))
    modules = {name.split(".")[0] for name in imported}
    assert {"crawler", "aiohttp", "selectolax"} <= modules  # the probe sees
    assert "crawler.storage.sqlite" in imported
    assert "resiliparse" not in modules
    assert "trafilatura" not in modules  # the extractor before issue 22, and its parser
    assert "lxml" not in modules
    assert not READ_SIDE & imported  # nor anything of the read commands
    assert sorted(asked.paths()) == ["/", "/a", "/robots.txt"]


async def test_a_broken_extractor_is_one_line_and_exit_2_before_any_request(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    seed, asked = await _site(aiohttp_server)
    config = _config(tmp_path, seed, store_text=True)
    # A resiliparse whose compiled part cannot load makes it fail.
    shadow = tmp_path / "shadow" / "resiliparse"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        'raise ImportError("libstdc++.so.6: cannot open shared object file")\n'
    )

    code, _, err = await run_cli_async("crawl", str(config), pythonpath=[str(shadow.parent)])

    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert "storage.store_text needs resiliparse" in line
    assert "libstdc++.so.6: cannot open shared object file" in line
    assert "pip install 'resiliparse>=" in line
    assert asked.paths() == []  # not even robots.txt
    assert not (tmp_path / "crawl.db").exists()  # nor the database


async def test_a_crawl_with_text_stores_it(aiohttp_server: Any, tmp_path: Path) -> None:
    seed, _ = await _site(aiohttp_server)
    config = _config(tmp_path, seed, store_text=True)

    code, _, err = await run_cli_async("crawl", str(config), "--quiet")

    assert code == 0, err
    code, out, err = await run_cli_async(
        "query", str(tmp_path / "crawl.db"),
        "SELECT text FROM pages ORDER BY url", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert "Welcome home." in out
    assert "A page about a." in out


async def test_a_broken_warcio_is_one_line_and_exit_2_before_any_file(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    seed, _ = await _site(aiohttp_server)
    config = _config(tmp_path, seed, store_text=False)
    code, _, err = await run_cli_async("crawl", str(config), "--quiet")
    assert code == 0, err
    shadow = tmp_path / "shadow" / "warcio"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("a warcio that fails")\n')
    out = tmp_path / "out.warc.gz"
    argv = ["export", str(tmp_path / "crawl.db"), "--format", "warc", "-o", str(out)]

    code, stdout, err = await run_cli_async(*argv, pythonpath=[str(shadow.parent)])

    assert (code, stdout) == (2, ""), err
    (line,) = err.strip().splitlines()
    assert "needs warcio" in line
    assert "a warcio that fails" in line
    assert not out.exists()
    assert not (tmp_path / f".{out.name}.part").exists()
    code, _, err = await run_cli_async(*argv)  # the real warcio
    assert code == 0, err
    assert out.stat().st_size > 0


@pytest.mark.parametrize(
    ("modules", "not_loaded"),
    [
        pytest.param(
            "crawler.text.worker, crawler.text.readable",
            ["crawler.extract.html", "selectolax"],
            id="text",
        ),
        pytest.param("crawler.extract.parse_helper, crawler.extract.html", [], id="parse"),
    ],
)
def test_the_helper_processes_start_without_an_event_loop(
    modules: str, not_loaded: list[str]
) -> None:
    # What a helper imports is its start-up's CPU, paid by every crawl: asyncio alone is ~40 ms,
    # extract/html.py and its imports as much again for a text helper, which needs neither, and
    # selectolax 17 ms more (its fallback imports it when it needs it).
    code = f"import sys, {modules}; print(*sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(modules.split(", ")) <= set(loaded)
    assert [m for m in loaded if m in ("asyncio", *not_loaded)] == []
