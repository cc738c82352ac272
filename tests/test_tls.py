"""https without the cost of aiohttp's import-time trust (crawler/tls.py): a crawl's
interpreter imports aiohttp with contexts that trust nothing and leaves the environment as it
was; every https request carries the trust store, loaded from OpenSSL's default verify paths
(SSL_CERT_FILE here) the first time it is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from kit import SITE, HostPlan, make_site, run_cli_async, write_config
from kit.tls import trusted_ca

SECURE = "secure.site.test"
_PROBE = """
import json, os
import crawler.engine.crawl  # what a crawl imports
import aiohttp.connector as connector
print(json.dumps({
    "verified": connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
    "file": os.environ.get("SSL_CERT_FILE"),
    "dir": os.environ.get("SSL_CERT_DIR"),
}))
"""


@pytest.mark.parametrize("environment", [{}, {"SSL_CERT_FILE": "/x/ca.pem", "SSL_CERT_DIR": "/x"}])
def test_a_crawl_imports_aiohttp_trusting_no_one_and_leaves_the_environment(
    environment: dict[str, str],
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**env, **environment}, capture_output=True,
        text=True, check=True, timeout=60,
    )  # fmt: skip
    seen = json.loads(probe.stdout)
    assert seen["verified"] == 0  # no CA bundle loaded at import
    assert (seen["file"], seen["dir"]) == (
        environment.get("SSL_CERT_FILE"),
        environment.get("SSL_CERT_DIR"),
    )


async def _crawl(tmp_path: Path, run: str, seed: str) -> list[tuple[Any, ...]]:
    config = write_config(
        tmp_path / f"{run}.toml",
        [seed],
        hosts=(SECURE,),
        db=f"{run}.db",
        politeness={"obey_robots": False},
    )
    ran = await run_cli_async("crawl", str(config))
    assert ran.code == 0, ran.err
    return await Backend("sqlite", str(tmp_path / f"{run}.db")).rows(
        "SELECT url, status, error FROM pages ORDER BY url"
    )


async def test_https_pages_are_fetched_with_the_default_trust_and_only_with_it(
    aiohttp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with trusted_ca(tmp_path, SECURE) as (ca_pem, server_context):
        server = await aiohttp_server(make_site({SECURE: HostPlan(pages=3)}), ssl=server_context)
    origin = f"https://{SECURE}:{server.port}"
    seen = server.app[SITE].log

    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))  # OpenSSL's default verify paths
    trusted = await _crawl(tmp_path, "trusted", f"{origin}/p/0")
    assert trusted == [(f"{origin}/p/{i}", 200, None) for i in range(3)]
    assert sorted(r.path for r in seen) == [f"/p/{i}" for i in range(3)]

    monkeypatch.delenv("SSL_CERT_FILE")  # the system's CAs, which never signed this site's
    [(url, status, error)] = await _crawl(tmp_path, "untrusted", f"{origin}/p/0")
    assert (url, status) == (f"{origin}/p/0", None)
    assert "certificate verify failed" in error, error
    assert len(seen) == 3  # no request reached the site
