"""The runs and passes of the PostgreSQL backend (rules 12 and 14): what a run's start and end
write, each in the caller's transaction or statement, on an asyncpg connection.

Starts are one at a time, crawl-wide (an advisory lock): two runs starting together agree on
which runs are gone and on the pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..records import Discovered
from . import postgres_writes as writes
from .common import MACHINE, PASS_UNFINISHED, REQUEUE_FETCHED, pass_start, run_is_gone
from .contract import PassStart
from .postgres_sessions import fence
from .postgres_writes import NOW, NOW_ISO

_START_LOCK = 0x72756E73  # pg_advisory_xact_lock key of start_run ("runs")

END_RUN = f"""
WITH released AS (UPDATE hosts SET owner = NULL, lease_until = NULL WHERE owner = $1)
UPDATE runs SET ended_at = {NOW_ISO}, outcome = $2, lag_p99_ms = $3, lag_max_ms = $4,
    reserved = 0
WHERE id = $1
"""
# The run's heartbeat (renew_hosts): its lag so far, where measured ($2, $3: ms or NULL).
HEARTBEAT = f"""
UPDATE runs SET renewed_at = {NOW_ISO}, lag_p99_ms = coalesce($2, lag_p99_ms),
    lag_max_ms = coalesce($3, lag_max_ms)
WHERE id = $1
"""
# (id, machine, pid, renewed_at, lease, reserved, now): what run_is_gone reads, and more.
RUNNING = f"SELECT id, machine, pid, renewed_at, lease, reserved, {NOW} FROM runs"
_PASS_UNFINISHED = PASS_UNFINISHED.format(pass_="$1")


async def start_run(
    conn: Any, seeds: Sequence[Discovered], max_depth: int, lease: float, new_pass: bool
) -> tuple[int, bool, float, int, PassStart]:
    """Record a new run (in a transaction): its id, whether earlier runs wrote this crawl, when
    the crawl's current session began (POSIX seconds), its pass and what it did with it."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _START_LOCK)  # one at a time
    earlier = bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM runs)"))
    running = await conn.fetch(f"{RUNNING} WHERE outcome = 'running' ORDER BY id")
    gone = [row for row in running if run_is_gone(row, row[6])]
    await fence(conn, gone)
    if gone:  # their hosts free up at once; their next claimer waits one delay
        ids = [row[0] for row in gone]
        await conn.execute("UPDATE hosts SET lease_until = 0 WHERE owner = ANY($1)", ids)
        await conn.execute(
            "UPDATE runs SET outcome = 'crashed', reserved = 0 WHERE id = ANY($1)", ids
        )
    pass_number = int(await conn.fetchval("SELECT coalesce(max(pass), 1) FROM runs"))
    unfinished = bool(await conn.fetchval(_PASS_UNFINISHED, pass_number))
    live = len(gone) < len(running)
    started = pass_start(new_pass, earlier, live, unfinished)
    if earlier and started == "started":
        pass_number += 1
        await conn.execute(REQUEUE_FETCHED)
    run_id = await conn.fetchval(
        "INSERT INTO runs (started_at, seeds, machine, pid, renewed_at, lease, pass)"
        f" VALUES ({NOW_ISO}, $1, $2, $3, {NOW_ISO}, $4, $5) RETURNING id",
        " ".join(s.url for s in seeds), MACHINE, os.getpid(), lease, pass_number,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO settings (key, value) VALUES ('max_depth', $1)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        str(max_depth),
    )
    await writes.add_hosts(conn, {s.host for s in seeds})
    await writes.relax(conn, await writes.upsert_urls(conn, seeds), max_depth)
    # The crawl's session began with the oldest run crawling now, this one included.
    began = await conn.fetchval(
        "SELECT min(started_at) FROM runs WHERE outcome = 'running' AND pass = $1", pass_number
    )
    return int(run_id), earlier, _seconds(began), pass_number, started


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
