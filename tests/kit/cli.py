"""One way to run the `crawler` command: a real `python -m crawler ARGS` process, or in-process.

`run_cli(*args)` (sync) and `await run_cli_async(*args)` wait for the process and return a
`Ran` (exit code, stdout, stderr), killing it after `seconds` (default 120) (a hang guard; the
failure shows what it said). `async with started_cli(*args) as process:` hands over the running
process, to signal or kill mid-run; it is killed and reaped on the way out if still running
(`start_cli` starts one the caller ends itself, for processes that outlive a block).
`prelude` runs Python code in the process before the CLI (to patch a constant, say);
`pythonpath` puts folders before the checkout on PYTHONPATH (the CLI's child processes too).
`run_in_process(capsys, *args)` calls `crawler.cli.main` in this process (`run_in_thread` in a
worker thread) and returns a `Ran` read from pytest's capsys.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

from crawler.cli import main

ROOT = Path(__file__).resolve().parents[2]  # the checkout, so its `crawler` is the one run
TIMEOUT = 120.0


class Ran(NamedTuple):
    """What a finished `crawler` process did (unpacks as `code, out, err`)."""

    code: int
    out: str
    err: str


def cli_argv(*args: str, prelude: str = "") -> list[str]:
    """The command line that runs `crawler ARGS` (after `prelude`, if any)."""
    if not prelude:
        return [sys.executable, "-m", "crawler", *args]
    script = (
        f"{prelude}\nimport sys\nfrom crawler.cli import main\nsys.exit(main({list(args)!r}))\n"
    )
    return [sys.executable, "-c", script]


def cli_env(first: Sequence[str] = ()) -> dict[str, str]:
    """The environment: this checkout on PYTHONPATH, after the folders `first`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*first, str(ROOT)])}


def run_cli(
    *args: str, seconds: float = TIMEOUT, prelude: str = "", pythonpath: Sequence[str] = ()
) -> Ran:
    """Run `crawler ARGS` to its end (from sync tests; it blocks the thread, not a loop)."""
    try:
        done = subprocess.run(
            cli_argv(*args, prelude=prelude),
            capture_output=True,
            text=True,
            timeout=seconds,
            env=cli_env(pythonpath),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"crawler {' '.join(args)} hung; it said: {exc.stderr!r}") from exc
    return Ran(done.returncode, done.stdout, done.stderr)


async def start_cli(
    *args: str, prelude: str = "", stdout: bool = True, pythonpath: Sequence[str] = ()
) -> asyncio.subprocess.Process:
    """`crawler ARGS` started, its stderr (and stdout unless `stdout` is False) piped. The
    caller ends it: prefer `started_cli`, which does."""
    return await asyncio.create_subprocess_exec(
        *cli_argv(*args, prelude=prelude),
        stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(pythonpath),
    )


@asynccontextmanager
async def started_cli(
    *args: str, prelude: str = "", stdout: bool = True, pythonpath: Sequence[str] = ()
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`start_cli(...)`'s process, killed and reaped on the way out if it is still running."""
    process = await start_cli(*args, prelude=prelude, stdout=stdout, pythonpath=pythonpath)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def finish(process: asyncio.subprocess.Process, seconds: float = TIMEOUT) -> Ran:
    """Wait for `process` to end; kill it after `seconds` and fail with what it said."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(f"the crawler process hung; it said: {err.decode()!r}") from None
    return Ran(process.returncode or 0, (out or b"").decode(), (err or b"").decode())


async def run_cli_async(
    *args: str, seconds: float = TIMEOUT, prelude: str = "", pythonpath: Sequence[str] = ()
) -> Ran:
    """Run `crawler ARGS` to its end without blocking the event loop (the test's servers)."""
    async with started_cli(*args, prelude=prelude, pythonpath=pythonpath) as process:
        return await finish(process, seconds)


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    """`crawler ARGS` in this process (crawler.cli.main), its output read from `capsys`."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return Ran(code, out, err)


async def run_in_thread(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    """`run_in_process` in a worker thread: for a test whose event loop serves or stores what
    the command reads (the PostgreSQL reader runs an event loop of its own)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return Ran(code, out, err)
