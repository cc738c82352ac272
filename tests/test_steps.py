"""Work in steps (crawler/extract/steps.py): pauses, and offloads run in a thread by the loop."""

from __future__ import annotations

import asyncio
import threading

from crawler.extract.fields import Field
from crawler.extract.html import NODES_PER_STEP, TREE_IN_THREAD, parse_html, parse_html_steps
from crawler.extract.steps import Steps, finish, run_steps

TOKEN = "crawler"


def _work(log: list[str]) -> Steps[str]:
    log.append("start")
    yield None
    thread = yield lambda: threading.get_ident()
    log.append("after offload")
    return f"ran in {'another' if thread != threading.get_ident() else 'this'} thread"


def test_finish_runs_every_step_and_offload_in_its_own_thread() -> None:
    log: list[str] = []
    assert finish(_work(log)) == "ran in this thread"
    assert log == ["start", "after offload"]


async def test_run_steps_lets_the_loop_run_between_steps_and_offloads_to_a_thread() -> None:
    log: list[str] = []

    async def other() -> None:
        log.append("other")

    other_task = asyncio.create_task(other())  # runs at the first turn the steps give back
    assert await run_steps(_work(log)) == "ran in another thread"
    await other_task
    assert log == ["start", "other", "after offload"]


def _requests(steps: Steps[object]) -> tuple[list[str], object]:
    """What each step asked for ("pause" or "offload"), running offloads inline; the result."""
    asked: list[str] = []
    sent: object = None
    while True:
        try:
            request = steps.send(sent)
        except StopIteration as done:
            return asked, done.value
        asked.append("pause" if request is None else "offload")
        sent = None if request is None else request()


def test_a_big_tree_is_built_by_an_offload_and_walked_in_steps() -> None:
    links = 3 * NODES_PER_STEP + 10
    html = "".join(f'<a href="/p/{n}">link {n}</a>' for n in range(links))
    assert len(html) > TREE_IN_THREAD
    body = html.encode()
    asked, parsed = _requests(parse_html_steps(body, None, TOKEN))
    assert asked.count("offload") == 1
    # the pre-pass's pauses, then the offload, then a pause every NODES_PER_STEP nodes
    # (html, head, body and the links)
    walk = asked[asked.index("offload") + 1 :]
    assert walk == ["pause"] * ((links + 3) // NODES_PER_STEP)
    assert parsed == parse_html(body, None, TOKEN)
    assert len(parse_html(body, None, TOKEN).links) == links


def test_a_small_tree_is_built_in_place() -> None:
    body = b'<title>T</title><a href="/a">a</a>'
    assert _requests(parse_html_steps(body, None, TOKEN)) == ([], parse_html(body, None, TOKEN))


def test_the_fields_of_a_big_page_are_read_by_the_offload() -> None:
    # With fields, the page goes to lexbor whole: its text is the tree's
    html = "<h1>Title</h1>" + "<p><span class=x>text</span></p>" * 50 + "<p>words " * 10_000
    assert len(html) > TREE_IN_THREAD
    body, fields = html.encode(), (Field("h1", "h1"), Field("spans", "span.x", None, True))
    asked, parsed = _requests(parse_html_steps(body, None, TOKEN, fields))
    assert asked.count("offload") == 1
    assert parsed == parse_html(body, None, TOKEN, fields)
    assert parsed.fields == {"h1": "Title", "spans": ["text"] * 50}
