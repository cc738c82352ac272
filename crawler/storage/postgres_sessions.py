"""The PostgreSQL sessions of crawler processes: named after their process, and ended when
their run's lease lapsed (fencing).

A process stopped halfway through a statement (SIGSTOP, a long pause, say between Execute and
Sync) leaves its session 'active', not idle in a transaction: no server timeout ends it, and
its row locks would keep the hosts it lost, and block other runs' writes, until it woke. So
each session names itself after its process (`application_name`, as `runs` records machine and
pid), and a run that finds another run gone (rule 12) ends that run's sessions. When the
stopped process wakes, its next statement fails, is retried on a new session, and its save
finds the hosts no longer its own (rule 9).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

# Ends the sessions that name themselves after these processes (session_name); their pids.
_FENCE = """
SELECT coalesce(array_agg(pid) FILTER (WHERE pg_terminate_backend(pid)), '{}')
FROM pg_stat_activity
WHERE datname = current_database() AND application_name = ANY($1::text[])
  AND pid <> pg_backend_pid()
"""
# pg_terminate_backend only signals: the session ends, and lets go of its locks, a moment later.
_STILL_THERE = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])"
FENCE_WAIT = 5.0  # seconds at most for the sessions ended to be gone
_POLL = 0.01


def session_name(machine: str, pid: int) -> str:
    """The application_name of a crawler process's sessions: its pid and machine, as `runs`
    has them, cut as the server cuts it (63 bytes)."""
    return f"crawler {pid} {machine}".encode()[:63].decode(errors="ignore")


async def fence(conn: Any, runs: Sequence[Any]) -> int:
    """End the sessions of these runs (rows of `runs`: id, machine, pid, ...); how many."""
    names = [session_name(r[1], r[2]) for r in runs if r[1] is not None and r[2] is not None]
    if not names:
        return 0
    pids = list(await conn.fetchval(_FENCE, names))
    if pids:
        logger.warning(
            "ended %d database sessions of runs whose lease lapsed: %s",
            len(pids), sorted(r[0] for r in runs),
        )  # fmt: skip
        await _gone(conn, pids)
    return len(pids)


async def _gone(conn: Any, pids: list[int]) -> None:
    """Wait until the sessions `pids` have ended (their locks with them), FENCE_WAIT at most
    (pg_terminate_backend's own wait needs PostgreSQL 14)."""
    for _ in range(int(FENCE_WAIT / _POLL)):
        # within a transaction, pg_stat_activity is read once, unless this snapshot is dropped
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        if not await conn.fetchval(_STILL_THERE, pids):
            return
        await asyncio.sleep(_POLL)
    logger.warning(
        "database sessions %s still there %.0f s after they were ended", pids, FENCE_WAIT
    )
