"""What a crawl needs installed: a crawl that stores no text imports neither trafilatura nor
lxml, and one that does but cannot import them ends at once, with one line and exit code 2,
before any request. Real `crawler` processes against a loopback server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).parent.parent
PAGES = {
    "/": '<title>Home</title><p>Welcome home.</p><a href="/a">a</a>',
    "/a": "<title>A</title><p>A page about a.</p>",
}
# Runs the crawl in this process and prints the top-level modules it imported.
PROBE = """
import json, sys
from crawler.cli import main
code = main(["crawl", sys.argv[1], "--quiet"])
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


async def _site(aiohttp_server: Any) -> tuple[str, list[str]]:
    """The pages on a loopback server: its root URL, and the paths requested, in order."""
    asked: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        asked.append(request.path)
        html = PAGES.get(request.path)
        if html is None:
            return web.Response(status=404)
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}/", asked


def _config(folder: Path, seed: str, store_text: bool) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[crawl]\nseeds = ["{seed}"]\n[politeness]\ndelay = 0\n'
        f'[storage]\npath = "crawl.db"\nstore_text = {str(store_text).lower()}\n'
    )
    return path


async def _run(*args: str, pythonpath: str = str(ROOT)) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": pythonpath},
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_a_crawl_without_text_imports_neither_trafilatura_nor_lxml(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    seed, asked = await _site(aiohttp_server)
    config = _config(tmp_path, seed, store_text=False)

    code, out, err = await _run("-c", PROBE, str(config))

    assert code == 0, err
    probed = json.loads(out.splitlines()[-1])
    assert probed["code"] == 0
    assert {"crawler", "aiohttp", "selectolax"} <= set(probed["modules"])  # the probe sees
    assert "trafilatura" not in probed["modules"]
    assert "lxml" not in probed["modules"]
    assert sorted(asked) == ["/", "/a", "/robots.txt"]


async def test_a_broken_extractor_is_one_line_and_exit_2_before_any_request(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    seed, asked = await _site(aiohttp_server)
    config = _config(tmp_path, seed, store_text=True)
    # A trafilatura that fails as lxml 6 without lxml_html_clean makes it fail.
    shadow = tmp_path / "shadow" / "trafilatura"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        'raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")\n'
    )

    code, _, err = await _run(
        "-m", "crawler", "crawl", str(config), pythonpath=f"{shadow.parent}{os.pathsep}{ROOT}"
    )

    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert "storage.store_text needs trafilatura" in line
    assert "lxml.html.clean module is now a separate project" in line
    assert "pip install" in line
    assert "lxml_html_clean" in line
    assert asked == []  # not even robots.txt
    assert not (tmp_path / "crawl.db").exists()  # nor the database


async def test_a_crawl_with_text_stores_it(aiohttp_server: Any, tmp_path: Path) -> None:
    seed, _ = await _site(aiohttp_server)
    config = _config(tmp_path, seed, store_text=True)

    code, _, err = await _run("-m", "crawler", "crawl", str(config), "--quiet")

    assert code == 0, err
    code, out, err = await _run(
        "-m", "crawler", "query", str(tmp_path / "crawl.db"),
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
    code, _, err = await _run("-m", "crawler", "crawl", str(config), "--quiet")
    assert code == 0, err
    shadow = tmp_path / "shadow" / "warcio"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("a warcio that fails")\n')
    out = tmp_path / "out.warc.gz"
    argv = ["export", str(tmp_path / "crawl.db"), "--format", "warc", "-o", str(out)]

    code, stdout, err = await _run(
        "-m", "crawler", *argv, pythonpath=f"{shadow.parent}{os.pathsep}{ROOT}"
    )

    assert (code, stdout) == (2, ""), err
    (line,) = err.strip().splitlines()
    assert "needs warcio" in line
    assert "a warcio that fails" in line
    assert not out.exists()
    assert not (tmp_path / f".{out.name}.part").exists()
    code, _, err = await _run("-m", "crawler", *argv)  # the real warcio
    assert code == 0, err
    assert out.stat().st_size > 0
