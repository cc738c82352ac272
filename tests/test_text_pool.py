"""The text helpers: real processes, real pages; a late one is killed, a dead one replaced."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import resource
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from crawler.records import Outcome, PageRecord, QueuedURL
from crawler.text.pool import BATCH, LINGER, TextError, TextPool, TextStage
from crawler.text.readable import page_text
from crawler.text.worker import (
    MEMORY_LIMIT,
    NICENESS,
    TRIM_BYTES,
    encode_request,
    serve,
    trimmer_above,
)

PAGE = b"<html><body><main><p>Ravens remember faces for years.</p></main></body></html>"
# A helper is late when it is stopped (SIGSTOP): late on any machine, however fast, while a
# page's answer gets a limit no busy machine misses (a slow page with a short limit did both).
LIMIT = 2.0


def stall(pool: TextPool) -> None:
    """Stop the pool's one helper: it answers no page until it is killed."""
    (pid,) = pool.pids
    os.kill(pid, signal.SIGSTOP)


async def test_a_page_gets_its_text_from_a_helper() -> None:
    async with TextPool(size=1) as pool:
        assert await pool.text(PAGE, None) == "Ravens remember faces for years."
        (pid,) = pool.pids
        assert pid != os.getpid()
    assert pool.pids == []


async def test_the_helper_gives_the_crawl_the_cpu_first() -> None:
    async with TextPool(size=1) as pool:
        await pool.text(PAGE, None)
        (pid,) = pool.pids
        helper = os.getpriority(os.PRIO_PROCESS, pid)
        assert helper == min(os.getpriority(os.PRIO_PROCESS, 0) + NICENESS, 19)


async def test_a_late_helper_is_killed_and_the_next_page_gets_a_new_one() -> None:
    async with TextPool(size=1, time_limit=LIMIT) as pool:
        await pool.text(PAGE, None)  # started: the first answer may take the import's time
        (first,) = pool.pids
        stall(pool)
        with pytest.raises(TextError, match=r"cut off after 2 s"):
            await pool.text(PAGE, None)
        assert pool.pids == []
        assert await pool.text(PAGE, None) == "Ravens remember faces for years."
        assert pool.pids != [first]


async def test_a_helper_that_dies_is_replaced() -> None:
    async with TextPool(size=1) as pool:
        await pool.text(PAGE, None)
        (pid,) = pool.pids
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(TextError, match="died"):
            await pool.text(PAGE, None)
        assert await pool.text(PAGE, None) == "Ravens remember faces for years."


async def test_a_batch_is_answered_in_order_and_pages_behind_a_late_one_go_to_the_next() -> None:
    async with TextPool(size=1, time_limit=LIMIT) as pool:
        await pool.text(PAGE, None)  # started: the first answer may take the import's time
        (first,) = pool.pids
        stall(pool)
        answers = await pool.texts([(PAGE, None), (b"<p>Crows", None), (b"", None), (PAGE, None)])
        assert isinstance(answers[0], TextError)
        assert str(answers[0]) == "cut off after 2 s"
        assert answers[1:] == ["Crows", None, "Ravens remember faces for years."]
        assert pool.pids not in ([], [first])  # the pages behind the late one: a new helper's


def _outcome(url: str, body: bytes) -> Outcome:
    page = PageRecord(
        url=url, host="a.test", status=200, content_type="text/html", title=None, body=body,
        bytes=len(body), truncated=False, depth=0, fetched_at="2026-01-01T00:00:00.000Z",
        elapsed_ms=1, error=None, location=None,
    )  # fmt: skip
    return Outcome(QueuedURL(1, url, "a.test", 0), "done", page=page, text_from=(body, None))


async def _through_stage(
    pool: TextPool, urls: list[str], linger: float = LINGER
) -> tuple[TextStage, list[Outcome]]:
    """An outcome of PAGE for each URL through a TextStage: the stage, and what it handed on."""
    emitted: list[Outcome] = []

    async def emit(outcome: Outcome) -> None:
        emitted.append(outcome)

    stage = TextStage(pool, emit, linger=linger)
    async with asyncio.TaskGroup() as group:
        group.create_task(stage.run())
        for url in urls:
            await stage.put(_outcome(url, PAGE))
        await stage.close()
    return stage, emitted


async def test_the_stage_hands_on_every_outcome_and_logs_why_text_is_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TextPool(size=1, time_limit=LIMIT) as pool:
        await pool.text(PAGE, None)
        stall(pool)
        with caplog.at_level(logging.WARNING, "crawler.text.pool"):
            stage, emitted = await _through_stage(pool, ["http://a.test/late", "http://a.test/ok"])
    texts = {o.page.url: o.page.text for o in emitted if o.page is not None}
    assert texts == {
        "http://a.test/late": None,
        "http://a.test/ok": "Ravens remember faces for years.",
    }
    assert all(o.text_from is None for o in emitted)
    assert "no text for http://a.test/late: cut off after 2 s" in caplog.text
    assert stage.failures == 1


async def test_the_stage_sends_what_it_gathered_as_one_batch() -> None:
    emitted: list[Outcome] = []

    async def emit(outcome: Outcome) -> None:
        emitted.append(outcome)

    async with TextPool(size=1) as pool:
        await pool.text(PAGE, None)
        # A linger no test waits out: the batch goes once a whole one is there, or when hurried.
        stage = TextStage(pool, emit, linger=3600)
        async with asyncio.timeout(60), asyncio.TaskGroup() as group:
            group.create_task(stage.run())
            for n in range(BATCH + 3):
                await stage.put(_outcome(f"http://a.test/{n}", PAGE))
            while len(emitted) < BATCH:  # noqa: ASYNC110 (the stage's progress: poll)
                await asyncio.sleep(0.01)
            assert (len(emitted), stage.batches) == (BATCH, 1)
            stage.hurry()
            while len(emitted) < BATCH + 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            assert stage.batches == 2
            await stage.close()
    assert [o.page.url for o in emitted if o.page] == [
        f"http://a.test/{n}" for n in range(BATCH + 3)
    ]
    assert {o.page.text for o in emitted if o.page} == {"Ravens remember faces for years."}


async def test_pages_go_without_text_while_the_helper_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shadow = tmp_path / "resiliparse"  # imported by the helpers instead of the real one
    shadow.mkdir()
    (shadow / "__init__.py").write_text('raise ImportError("gone")\n')
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    async with TextPool(size=1) as pool:
        with caplog.at_level(logging.WARNING, "crawler.text.pool"):
            urls = ["http://a.test/1", "http://a.test/2"]
            stage, emitted = await _through_stage(pool, urls, linger=0)
    assert [(o.page.url, o.page.text) for o in emitted if o.page] == [
        ("http://a.test/1", None), ("http://a.test/2", None),
    ]  # fmt: skip
    assert stage.failures == 2
    assert "no text for http://a.test/2: ImportError: gone" in caplog.text


def test_the_helper_trims_its_heap_after_a_big_page_only() -> None:
    pages = [b"<p>small</p>", b"<p>" + b"x" * TRIM_BYTES, b"<p>small again</p>"]
    requests = io.BytesIO(b"".join(encode_request(page, "utf-8") for page in pages))
    answers = io.BytesIO()
    trimmed_after: list[int] = []

    serve(
        requests, answers, page_text, lambda: trimmed_after.append(answers.getvalue().count(b"T"))
    )

    assert trimmed_after == [2]  # once, after the second page's answer was written
    assert answers.getvalue().count(b"T") == 3


def test_after_a_small_page_the_helper_trims_only_past_the_bloat_limit() -> None:
    pages = [b"<p>small</p>", b"<p>" + b"x" * TRIM_BYTES, b"<p>small again</p>"]
    requests = io.BytesIO(b"".join(encode_request(page, "utf-8") for page in pages))
    answers = io.BytesIO()
    trims: list[tuple[str, int]] = []

    def after(kind: str) -> Callable[[], None]:
        return lambda: trims.append((kind, answers.getvalue().count(b"T")))

    serve(requests, answers, page_text, after("big"), after("small"))
    assert trims == [("small", 1), ("big", 2), ("small", 3)]


def test_the_heap_is_trimmed_only_past_the_limit() -> None:
    held = [10, 20, 30]
    trims: list[int] = []
    trim = trimmer_above(lambda: trims.append(held[0]), lambda: held[0], 20)
    for _ in range(3):
        trim()
        held.pop(0)
    assert trims == [30]
    # Where the memory or the limit is unknown, every big page is followed by a trim.
    unknown: list[None] = []
    trimmer_above(lambda: unknown.append(None), lambda: None, 20)()
    trimmer_above(lambda: unknown.append(None), lambda: 10, None)()
    assert len(unknown) == 2


async def test_a_page_whose_tree_outgrows_the_helpers_memory_fails_alone() -> None:
    # 900 distinct formatting elements left open, then paragraphs: lexbor copies the open ones
    # into each paragraph, gigabytes from 92 KB (nested shallow enough to pass the depth
    # estimate). The parse fails at the helper's memory limit; the page gets its visible text, or
    # none when the fallback finds no memory left either (where malloc fails varies).
    bomb = b"<html><body>" + b"".join(b"<b id=%d>x<p>" % n for n in range(900)) + b"<p>y" * 20_000
    async with TextPool(size=1) as pool:
        text = await pool.text(bomb, None)
        assert text is None or text.split("\n") == ["x"] * 900 + ["y"] * 20_000
        (pid,) = pool.pids
        assert resource.prlimit(pid, resource.RLIMIT_AS) == (MEMORY_LIMIT, MEMORY_LIMIT)
        # The page's own cap held, far under the process's limit (which it reaches without).
        assert _vm_peak(pid) < MEMORY_LIMIT // 2
        assert await pool.text(PAGE, None) == "Ravens remember faces for years."
        assert pool.pids == [pid]  # the same helper: it failed the parse, not itself


def _vm_peak(pid: int) -> int:
    """The process's peak address space (what RLIMIT_AS bounds), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    (line,) = [line for line in status.splitlines() if line.startswith("VmPeak:")]
    return int(line.split()[1]) * 1024
