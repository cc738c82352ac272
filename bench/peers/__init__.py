"""The peers the benchmark measures the crawler against, each a command run on one JSON job file.

    {"seeds": ["http://127.0.1.1:8481/"], "allowed_hosts": ["127.0.1.1"], "concurrency": 16,
     "obey_robots": true, "out": "/tmp/x/peer-out", "urls_file": "/tmp/x/urls.txt",
     "user_agent": "scrapy-peer"}

| peer | command |
| --- | --- |
| raw aiohttp loop | `.venv/bin/python bench/peers/raw_loop.py JOB` (reads `urls_file`) |
| Scrapy CrawlSpider | `scrapy_python() bench/peers/scrapy_peer.py JOB` (its own venv) |
| crawlee-python ParselCrawler | `crawlee_python() bench/peers/crawlee_peer.py JOB` (its own venv) |
| GNU wget -r | `.venv/bin/python bench/peers/wget_peer.py JOB` (execs /usr/bin/wget), or the
  argv printed by `wget_peer.py JOB --print`, run directly, to leave Python's RSS out |

Each module's docstring says what the peer does and how it differs from the crawler.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parent
SCRAPY_REQUIREMENTS = PEERS / "scrapy-requirements.txt"
SCRAPY_VENV = PEERS.parent / ".venv-scrapy"  # kept out of git (.gitignore)
CRAWLEE_REQUIREMENTS = PEERS / "crawlee-requirements.txt"
CRAWLEE_VENV = PEERS.parent / ".venv-crawlee"  # kept out of git (.gitignore)


def peer_venv(venv: Path, requirements: Path, ready: str) -> Path:
    """The Python of a peer's own venv, built first if `venv/bin/<ready>` is missing.

    Building means `python -m venv` and `pip install -r requirements` (about half a minute,
    from PyPI). A half-built venv has no `bin/<ready>` yet, so the next call builds it again.
    Error handling: a failed step raises `subprocess.CalledProcessError`; pip's errors are on
    stderr, its progress and warnings are not shown.
    """
    python = venv / "bin" / "python"
    if not (venv / "bin" / ready).exists():
        # A peer must not share the crawler's venv: its pins (aiohttp, lxml, ...) are its own.
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-qq", "-r", str(requirements)], check=True
        )
    return python


def scrapy_python(venv: Path = SCRAPY_VENV) -> Path:
    """The Python of Scrapy's own venv (bench/.venv-scrapy), built on first use."""
    return peer_venv(venv, SCRAPY_REQUIREMENTS, "scrapy")


def crawlee_python(venv: Path = CRAWLEE_VENV) -> Path:
    """The Python of crawlee's own venv (bench/.venv-crawlee), built on first use; its `crawlee`
    command (the last thing pip installs) marks it built."""
    return peer_venv(venv, CRAWLEE_REQUIREMENTS, "crawlee")
