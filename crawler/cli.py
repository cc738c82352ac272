"""The `crawler` command: crawl, resume, recrawl, stats, query, search, export, report, serve,
demo-site.

User errors (bad config, missing file, bad SQL) print one line and exit 2; a crawl stopped by
SIGINT or SIGTERM exits 130 or 143 and can be resumed. Anything else that escapes is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .commands.export import FORMATS as EXPORT_FORMATS
from .commands.export import export
from .commands.query import FORMATS, run_query, write_rows
from .commands.report import DEFAULT_LIMIT, report
from .commands.report import FORMATS as REPORT_FORMATS
from .config import Config
from .engine.processes import config_path, run_processes
from .engine.progress import Reporter
from .errors import CrawlerError, UsageError
from .storage import open_reader, shown

if TYPE_CHECKING:
    from .engine.crawl import Crawler, RunResult

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
EXIT_BROKEN_PIPE = 141  # as a shell reports a process that SIGPIPE ended


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except BrokenPipeError:
        # What read our output stopped reading (`crawler export … | head`): no error of ours.
        # Python would still fail flushing stdout at exit, so stdout goes to /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (CrawlerError, BaseExceptionGroup) as exc:
        error = _crawler_error(exc)
        if error is None:
            raise  # a bug, or a bug beside a CrawlerError: its traceback must show
        print(f"crawler: error: {error}", file=sys.stderr)
        code = error.exit_code
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crawler", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    for name, run, text in (
        ("crawl", _crawl, "crawl as CONFIG says, continuing an unfinished crawl"),
        ("resume", _resume, "continue an interrupted crawl"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("config", nargs="?", default="config.toml", metavar="CONFIG")
        command.add_argument("--quiet", action="store_true", help="no progress output")
        command.add_argument(
            "--processes",
            type=int,
            default=0,
            metavar="N",
            help="start N crawl processes on this machine (needs storage.url: PostgreSQL)",
        )
        command.set_defaults(run=run)

    text = "visit again every page the database holds, asking what changed"
    recrawl = commands.add_parser("recrawl", help=text, description=text)
    recrawl.add_argument("config", nargs="?", default="config.toml", metavar="CONFIG")
    recrawl.add_argument("--quiet", action="store_true", help="no progress output")
    recrawl.set_defaults(run=_recrawl)

    stats = commands.add_parser("stats", help="summarize a crawl database")
    stats.add_argument("db", metavar="DB", help="an SQLite file, or a postgresql:// URL")
    stats.add_argument("--hosts", action="store_true", help="per-host politeness table")
    stats.set_defaults(run=_stats)

    query = commands.add_parser("query", help="run SQL on a crawl database, read-only")
    query.add_argument("db", metavar="DB", help="an SQLite file, or a postgresql:// URL")
    query.add_argument("sql", metavar="SQL")
    query.add_argument("--format", choices=FORMATS, default=None, help="default: table on a TTY")
    query.set_defaults(run=_query)

    search = commands.add_parser("search", help="full-text search over the pages' title and text")
    search.add_argument("db", metavar="DB", help="an SQLite file, or a postgresql:// URL")
    search.add_argument(
        "terms", nargs="+", metavar="TERMS", help='words, "phrases", AND OR NOT, x*'
    )
    search.add_argument("--limit", type=int, default=20, metavar="N", help="default: 20")
    search.add_argument("--format", choices=FORMATS, default=None, help="default: table on a TTY")
    search.set_defaults(run=_search)

    text = "write the crawl out: JSON Lines or WARC 1.1"
    exporting = commands.add_parser("export", help=text, description=text)
    exporting.add_argument("db", metavar="DB", help="an SQLite file, or a postgresql:// URL")
    exporting.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    exporting.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    exporting.set_defaults(run=_export)

    text = "what is broken, duplicated, orphaned and slow: one HTML file, or JSON"
    reporting = commands.add_parser("report", help=text, description=text)
    reporting.add_argument("db", metavar="DB", help="an SQLite file, or a postgresql:// URL")
    reporting.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    reporting.add_argument("--format", choices=REPORT_FORMATS, default="html")
    reporting.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help="items per list (default 1000)",
    )
    reporting.set_defaults(run=_report)

    text = "serve a crawl's live page, its report and Prometheus /metrics, read-only"
    serve = commands.add_parser("serve", help=text, description=text)
    serve.add_argument("db", metavar="DB", help="an SQLite file, or a postgresql:// URL")
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (loopback)")
    serve.add_argument("--port", type=int, default=8765, help="default: 8765; 0: any free port")
    serve.add_argument(
        "--token", metavar="T", help="every request must carry it; needed off loopback"
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo-site", help="serve the bundled demo site on loopback")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(run=_demo_site)
    return parser


def _crawl(args: argparse.Namespace) -> int:
    config = Config.load(args.config)
    if args.processes:
        _log_to_stderr(args.quiet)
        return run_processes(config, config_path(args.config), args.processes, quiet=args.quiet)
    return _run_crawl(config, args)


def _resume(args: argparse.Namespace) -> int:
    config = Config.load(args.config)
    db = config.database
    if isinstance(db, Path) and not db.exists():
        raise UsageError(f"{db}: no crawl database to resume (run `crawler crawl` first)")
    if _queued(db) == 0:
        raise UsageError(f"{shown(db)}: holds no unfinished crawl: nothing is queued")
    return _crawl(args)


def _recrawl(args: argparse.Namespace) -> int:
    config = Config.load(args.config)
    db = config.database
    if isinstance(db, Path) and not db.exists():
        raise UsageError(f"{db}: no crawl database to recrawl (run `crawler crawl` first)")
    with open_reader(db, require=("pages",)) as reader:
        if not reader.has_pages():
            raise UsageError(f"{reader.name}: holds no fetched page to recrawl")
    return _run_crawl(config, args, recrawl=True)


def _queued(db: str | Path) -> int:
    """How many URLs are queued in the crawl database `db`: an SQLite file's path, or a
    PostgreSQL URL. UsageError/StoreError (exit 2) if it cannot be opened or is not a crawl's."""
    with open_reader(db, require=("urls",)) as reader:
        return reader.queued()


def _log_to_stderr(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def _run_crawl(config: Config, args: argparse.Namespace, *, recrawl: bool = False) -> int:
    _log_to_stderr(args.quiet)
    reporter = None if args.quiet else Reporter()
    # Imported here, not above: `query` and `stats` need no HTTP client, and the process that
    # parses big pages re-imports this module on start (multiprocessing's spawn).
    from .engine.crawl import Crawler

    crawler = Crawler(config, reporter=reporter, recrawl=recrawl)
    _tune_gc()
    result, stopped_by = asyncio.run(_run_with_signals(crawler))
    for signum in EXIT_SIGNAL:  # the crawl is over: a late Ctrl-C must not kill the exit
        signal.signal(signum, signal.SIG_IGN)
    where = shown(config.database)  # the database really used: storage.url when it is set
    if result is None or result.outcome == "interrupted":
        print(
            f"crawler: stopped; committed pages are kept in {where}."
            f" Continue with: crawler resume {args.config}",
            file=sys.stderr,
        )
        return EXIT_SIGNAL.get(stopped_by or signal.SIGINT, 130)
    if not args.quiet:
        print(
            f"crawler: {result.outcome}: {result.pages} pages in {result.seconds:.1f} s → {where}",
            file=sys.stderr,
        )
        if result.pages == 0 and result.outcome == "finished" and result.pass_number == 1:
            print(
                f"crawler: nothing was left to crawl in {where}; to crawl again, delete it or"
                f" set another {'storage.url' if config.storage.url else 'storage.path'},"
                " or run `crawler recrawl`",
                file=sys.stderr,
            )
    if result.pass_number > 1:  # a recrawl's pass, or one resumed: what changed, one line
        from .commands.stats import format_pass, read_pass

        changes = format_pass(read_pass(config.database, result.pass_number))
        print(f"pass {result.pass_number}: {changes}")
    return 0


async def _run_with_signals(
    crawler: Crawler,
) -> tuple[RunResult | None, signal.Signals | None]:
    """Run the crawl; the first SIGINT/SIGTERM stops it gracefully, a second one at once."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    received: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum)
        if len(received) > 1:
            main_task.cancel()
            return
        print(
            "\ncrawler: stopping; in-flight requests get a few seconds (again to stop now)",
            file=sys.stderr,
        )
        crawler.stop("interrupted")

    for signum in EXIT_SIGNAL:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await crawler.run(), (received[0] if received else None)
    except asyncio.CancelledError:
        if not received:
            raise
        return None, received[0]
    finally:
        for signum in EXIT_SIGNAL:
            loop.remove_signal_handler(signum)


def _stats(args: argparse.Namespace) -> int:
    from .commands.stats import format_hosts, format_stats, read_stats  # not needed to crawl

    print(format_hosts(args.db) if args.hosts else format_stats(read_stats(args.db)))
    return 0


def _query(args: argparse.Namespace) -> int:
    fmt = args.format or ("table" if sys.stdout.isatty() else "csv")
    run_query(args.db, args.sql, fmt, sys.stdout)
    return 0


def _search(args: argparse.Namespace) -> int:
    from .commands.search import run_search

    fmt = args.format or ("table" if sys.stdout.isatty() else "csv")
    columns, rows = run_search(args.db, " ".join(args.terms), args.limit)
    write_rows(fmt, columns, rows, sys.stdout)
    return 0


def _export(args: argparse.Namespace) -> int:
    try:
        pages = export(args.db, args.format, args.output)
    except KeyboardInterrupt:
        kept = "" if args.output in (None, "-") else f"; {args.output} was not written"
        print(f"\ncrawler: export stopped{kept}", file=sys.stderr)
        return EXIT_SIGNAL[signal.SIGINT]
    if args.output not in (None, "-"):
        print(f"crawler: exported {pages} pages to {args.output}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    report(args.db, args.format, args.output, args.limit)
    if args.output not in (None, "-"):
        print(f"crawler: report written to {args.output}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .commands.serve import run_serve  # the web server and prometheus_client: only here

    _log_to_stderr(quiet=True)
    return run_serve(args.db, args.host, args.port, args.token)


def _tune_gc() -> None:
    """Fewer, cheaper collections for the crawl: the modules loaded so far are frozen out of
    the collector's sight, and it runs after 2,000 new objects, not 700. Measured on the
    64-host site: without the freeze, eight full collections stalled the event loop 40 to
    70 ms each. A young collection there takes 5 to 18 ms at 10,000 (the objects of requests
    and pages in flight, scattered over the heap); at 2,000 most take under 5 ms, for about 1%
    more CPU in all, and the loop's lag p99 drops from 12-15 ms to 10-13 ms. No collection
    before the freeze: it took 30-40 ms of every crawl's start-up and found a few dozen objects
    to free."""
    gc.freeze()
    gc.set_threshold(2_000, 10, 10)


def _demo_site(args: argparse.Namespace) -> int:
    from . import demo_site  # the aiohttp server: only for this command

    demo_site.run(args.port, host=args.host, quiet=args.quiet)
    return 0


def _crawler_error(exc: BaseException) -> CrawlerError | None:
    """The CrawlerError that `exc` is, or that an exception group (the engine's TaskGroup)
    holds; None if the group holds anything else too (cancellations aside), so that no
    unexpected error is ever hidden behind a one-line message."""
    if isinstance(exc, CrawlerError):
        return exc
    if not isinstance(exc, BaseExceptionGroup):
        return None
    found = [_crawler_error(inner) for inner in exc.exceptions]
    others = [
        inner
        for inner, error in zip(exc.exceptions, found, strict=True)
        if error is None and not isinstance(inner, asyncio.CancelledError)
    ]
    errors = [error for error in found if error is not None]
    return errors[0] if errors and not others else None
