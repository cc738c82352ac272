"""Crash-proof, measured: seeded rounds of SIGKILL-and-resume against the demo site.

Each round crawls the demo site (366 pages over three hosts) with the real `crawler` command,
kills it with SIGKILL at seeded random moments (the first during start-up), resumes until it
exits 0, and checks: the uninterrupted crawl's page set, no committed page requested again
(from the server's own log), and `PRAGMA integrity_check` after every kill.

    .venv/bin/python bench/killresume.py --rounds 20 --kills 4
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from aiohttp.test_utils import TestServer  # noqa: E402
from killing import kill_and_resume  # noqa: E402

from crawler.demo_site import REQUEST_LOG, expected_pages, make_app  # noqa: E402


async def run(rounds: int, kills: int) -> int:
    failures = 0
    total_kills = 0
    print("round  kills  resumes  pages  expected  refetched  integrity")
    for seed in range(1, rounds + 1):
        app = make_app()
        async with TestServer(app) as server:
            assert server.port is not None
            with tempfile.TemporaryDirectory() as tmp:
                result = await kill_and_resume(
                    app[REQUEST_LOG], server.port, Path(tmp), seed=seed, kills=kills
                )
            expected = expected_pages(port=server.port)
        same = result.pages.keys() == expected.keys()
        clean = set(result.integrity) == {"ok"}
        failures += not (same and clean and not result.refetched)
        total_kills += len(result.kills)
        print(
            f"{seed:5}  {len(result.kills):5}  {result.resumes:7}  {len(result.pages):5}"
            f"  {len(expected):8}  {len(result.refetched):9}  {'ok' if clean else 'CORRUPT'}"
        )
    print(f"{rounds} rounds, {total_kills} kills: {rounds - failures} rounds identical")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kills", type=int, default=4)
    args = parser.parse_args()
    return asyncio.run(run(args.rounds, args.kills))


if __name__ == "__main__":
    sys.exit(main())
