"""The PostgreSQL store outlives the server ending its sessions: the idle-in-transaction timeout
(a process stopped mid-transaction) or an administrator's pg_terminate_backend. Each operation
runs again on a fresh connection; none of them fails the crawl."""

from __future__ import annotations

import asyncpg
from yarl import URL

from crawler.records import Discovered, Outcome, PageRecord, utc_now
from crawler.storage import Batch
from crawler.storage.postgres import PostgresStore

SEED = "http://a.test/"


async def _end_other_sessions(url: str) -> int:
    """Terminate every other session on this database; returns how many there were."""
    conn = await asyncpg.connect(url)
    try:
        ended = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return len(ended)


def _page(url: str) -> PageRecord:
    return PageRecord(
        url=url, host=URL(url).host or "", status=200, content_type="text/html", title="t",
        body=b"<p>", bytes=3, truncated=False, depth=0, fetched_at=utc_now(), elapsed_ms=1,
        error=None, location=None,
    )  # fmt: skip


async def test_every_operation_survives_its_sessions_ended(pg_url: str) -> None:
    async with PostgresStore.open(pg_url) as store:
        await store.start_run([Discovered(SEED, "a.test", 0, "queued", None, None)], 5, 60.0)
        (record,) = await store.claim_hosts(10)

        assert await _end_other_sessions(pg_url) >= 1
        (queued,) = await store.next_queued("a.test", 10, ())
        assert await _end_other_sessions(pg_url) >= 1
        assert await store.count_queued() == 1
        assert await _end_other_sessions(pg_url) >= 1
        assert await store.live_runs() == 1
        assert await _end_other_sessions(pg_url) >= 1
        queued.claim = record.claim
        lost = await store.save(Batch([Outcome(queued, "done", page=_page(SEED))]))

        assert lost == []
        assert await _end_other_sessions(pg_url) >= 1
        assert await store.count_queued() == 0
        assert await store.hosts_with_work() == 0
