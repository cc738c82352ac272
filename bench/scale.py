"""Scaling out: the 64-host site crawled by 1 process on SQLite, and by 1, 2 and 4 processes
sharing one crawl on PostgreSQL (issue 13).

    make bench-scale            # 1 round, rewrites the scale table in bench/README.md
    .venv/bin/python bench/scale.py [--rounds 1] [--processes 1,2,4] [--write-readme] [--keep]
        [--delay 0 --per-host 16] [--pg-set NAME=VALUE ...]

The site, its ground truth, nginx and the crawl settings are bench/perf.py's 64-host run (its
code, imported): one nginx worker, `delay = 0`, `per_host_concurrency = 16`, `concurrency = 16`
in each process (`--delay` and `--per-host` change the first two, for a politeness check with
teeth). PostgreSQL is a throwaway server (tests/pgserver.py) restarted with pg_stat_statements
preloaded and PostgreSQL's default 128 MB of shared_buffers (`--pg-set` adds settings);
durability is off as in the tests (fsync, synchronous_commit). Each PostgreSQL run gets a fresh
database; its N processes are N `crawler crawl CONFIG --quiet` subprocesses started together
with the same config.

Measured for each run, from outside the crawler:
- wall time from the first process's start to the last one's exit; pages/s = rows in `pages`
  / wall time;
- CPU: each crawler process's user+sys (its children included) and peak RSS from GNU time;
  the PostgreSQL server's and nginx's from /proc/<pid>/stat of their main process (its own
  time and that of the children it reaped) plus each live child, before and after; "other":
  what the rest of the machine used meanwhile (/proc/stat), to show interference;
- database round trips: statements the server executed for the run's database
  (pg_stat_statements `calls`, BEGIN and COMMIT included; asyncpg's 4-statement reset query
  counted once for round trips), transactions (pg_stat_database `xact_commit`) and WAL bytes
  (pg_stat_wal), per page;
- correctness from a second nginx access log that also records each request's client port,
  matched to the crawler process owning that socket (/proc polled every POLL seconds): the
  pages requested against the ground truth (none missing, none extra, none twice), every
  process's exit status, robots.txt requested once per host, and politeness per host: no
  start-to-start gap below the delay, never more than `per_host_concurrency` requests open at
  once (tests/kit/site.py's checkers, within the log's millisecond), never two processes'
  requests open at once.

Exit status: 0 when every check and the target (CPU per page on PostgreSQL with one process at
most 1.5x SQLite's) held, 1 when one did not, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import perf
from gensite import write_multihost
from kit import Request, min_gap
from nginx import LOG_FORMAT, LOG_LINE, BenchError, Nginx, server
from pgserver import PgNotFoundError, PgServer, PgServerError, find_bindir

PORT = 8491  # not perf.py's 8481: the two benchmarks can run side by side
TABLE_START, TABLE_END = "<!-- scale table: start -->", "<!-- scale table: end -->"
TARGET = 1.5  # CPU per page on PostgreSQL (1 process) at most this times SQLite's
TICK = os.sysconf("SC_CLK_TCK")
TOP_STATEMENTS = 10  # statements listed, most called and most time first
SLACK = 0.002  # nginx logs times to the millisecond: a start or an end is known to +-1 ms
POLL = 0.05  # seconds between looks at the crawler processes' sockets
RESET_QUERY = "UNLISTEN *"  # one of the 4 statements of asyncpg's reset (1 round trip a release)


# ------------------------------------------------------------------------------- measuring


def tree_cpu(pid: int) -> float:
    """CPU seconds of process `pid`: its own, its reaped children's, and each live child's."""
    own = _stat(pid)
    if own is None:
        return 0.0
    total = sum(int(f) for f in own[11:15])  # utime, stime, cutime, cstime
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                total += sum(int(f) for f in fields[11:15])
    return total / TICK


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: fields[0] is the state, [1] the parent."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone meanwhile
    return text.rpartition(")")[2].split()


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # less idle and iowait


@dataclass
class Process:
    """One `crawler crawl` under GNU time."""

    popen: subprocess.Popen[bytes]
    output: Path
    report: Path

    @classmethod
    def start(cls, cmd: list[str], output: Path, env: dict[str, str]) -> Process:
        report = output.with_suffix(".time")
        with output.open("wb") as log:
            timed = [str(perf.TIME), "-f", "%x %U %S %M", "-o", str(report), *cmd]
            popen = subprocess.Popen(timed, stdout=log, stderr=subprocess.STDOUT, env=env)
        return cls(popen, output, report)

    @property
    def crawler_pid(self) -> int | None:
        """The crawler's own process (GNU time's child), once started."""
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields is not None and int(fields[1]) == self.popen.pid:
                    return int(entry.name)
        return None

    def result(self) -> tuple[int, float, float]:
        """Exit code, CPU seconds (user+sys, children included), peak RSS in MB."""
        self.popen.wait()
        code, user, system, rss_kb = self.report.read_text().split()[-4:]
        return int(code), float(user) + float(system), int(rss_kb) / 1024


class Sockets:
    """Which crawler process owns each client port of a connection to nginx: every POLL
    seconds, each process's socket inodes (/proc/<pid>/fd) matched against /proc/net/tcp.
    A connection shorter than POLL may be missed (its requests stay unattributed)."""

    def __init__(self, port: int) -> None:
        self._remote = f":{port:04X}"
        self.owners: dict[int, set[int]] = defaultdict(set)  # client port: process numbers

    def poll(self, pids: dict[int, int]) -> None:
        """`pids`: process number by pid."""
        inodes: dict[str, int] = {}
        for pid, number in pids.items():
            try:
                for fd in os.scandir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        link = os.readlink(fd.path)
                        if link.startswith("socket:["):
                            inodes[link[8:-1]] = number
            except OSError:
                continue  # exited meanwhile
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2].endswith(self._remote) and fields[9] in inodes:
                self.owners[int(fields[1].rpartition(":")[2], 16)].add(inodes[fields[9]])

    def owner(self, port: int) -> int | None:
        owners = self.owners.get(port, set())
        return next(iter(owners)) if len(owners) == 1 else None


def scale_log(prefix: Path) -> str:
    """nginx directives (at http level, beside bench/nginx.py's own log) for a second access
    log with each request's client port: which process sent it."""
    return (
        f"    log_format scale '{LOG_FORMAT} $remote_port';\n"
        f"    access_log {prefix / 'scale-access.log'} scale;"
    )


class StatsServer(PgServer):
    """The tests' throwaway server, restarted with pg_stat_statements loaded, PostgreSQL's
    default shared_buffers (the tests use 32 MB), and `settings` (name: value)."""

    def __init__(self, settings: dict[str, str]) -> None:
        super().__init__()
        self.settings = {
            "shared_preload_libraries": "pg_stat_statements",
            "shared_buffers": "128MB",
            **settings,
        }

    def start(self) -> None:
        super().start()
        try:
            for name, value in self.settings.items():
                quoted = value.replace("'", "''")
                self.psql(f"ALTER SYSTEM SET {name} = '{quoted}'")
            # pg_ctl restart keeps the command-line settings (postmaster.opts); as `postgres`.
            self._server_cmd(
                "pg_ctl",
                "restart",
                f"--pgdata={self.data_dir}",
                f"--log={self.socket_dir / 'server.log'}",
                "--mode=fast",
                "--wait",
            )
            self.psql("CREATE EXTENSION pg_stat_statements")
        except BaseException:
            self.stop()
            raise

    @property
    def postmaster(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    def rows(self, sql: str, dbname: str = "postgres") -> list[list[str]]:
        return [line.split("|") for line in self.psql(sql, dbname).splitlines() if line]


# ------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Settings:
    """What every run of one benchmark shares besides the site."""

    delay: float = 0.0  # perf.py's 64-host run: no delay,
    per_host: int = perf.CONCURRENCY  # and per-host concurrency = concurrency
    pg_set: tuple[str, ...] = ()  # NAME=VALUE server settings


@dataclass
class Run:
    """One crawl: `processes` crawler processes on `backend`."""

    backend: str  # "sqlite" or "postgres"
    processes: int
    exits: list[int]
    wall: float
    crawler_cpu: float
    server_cpu: float
    nginx_cpu: float
    other_cpu: float
    rss_mb: float  # the largest of the processes'
    # From the database:
    pages: int = 0  # rows in `pages`
    split: list[int] = field(default_factory=list)  # pages by process (runs.pages), most first
    lag_p99_ms: float | None = None  # the worst of the processes'
    statements: int | None = None
    resets: int | None = None  # asyncpg's reset queries (4 statements, 1 round trip)
    transactions: int | None = None
    wal_bytes: int | None = None
    # From nginx's log:
    requested: int = 0  # page requests (robots.txt aside)
    missing: int = 0
    extra: int = 0
    twice: int = 0
    robots_not_once: int = 0  # hosts whose robots.txt was requested other than once
    gap_hosts: int = 0  # hosts with two request starts closer than the delay
    crowded_hosts: int = 0  # hosts with more than per_host_concurrency requests open at once
    most_in_flight: int = 0  # the most requests surely open at once on one host
    most_in_flight_maybe: int = 0  # ... and the most that may have been, within the log's ms
    shared_hosts: int = 0  # hosts that two processes had requests open to at once
    handovers: int = 0  # times a host's requests came from another process than the last one's
    unattributed: int = 0  # requests whose process is not known (connection shorter than POLL)
    # Details, for the report:
    top: list[tuple[int, str]] = field(default_factory=list)  # (calls, statement)
    timed: list[tuple[float, int, str]] = field(default_factory=list)  # (ms, calls, statement)
    tables: list[str] = field(default_factory=list)  # name, seq/index scans, rows, autovacuum
    outputs: list[str] = field(default_factory=list)  # each process's output, when it failed
    doubles: list[str] = field(default_factory=list)  # each request of a page fetched twice

    @property
    def label(self) -> str:
        name = "SQLite" if self.backend == "sqlite" else "PostgreSQL"
        return f"{name}, {self.processes} process{'es' if self.processes > 1 else ''}"

    @property
    def rate(self) -> float:
        return self.pages / self.wall if self.wall else 0.0

    def per_page(self, seconds: float) -> float:
        return 1000 * seconds / max(self.pages, 1)

    @property
    def cpu_ms(self) -> float:
        """Crawler processes and database server, ms a page."""
        return self.per_page(self.crawler_cpu + self.server_cpu)

    @property
    def correct(self) -> bool:
        return (
            self.missing == self.extra == self.twice == 0
            and self.requested == self.pages
            and all(code == 0 for code in self.exits)
        )

    @property
    def round_trips(self) -> int | None:
        """Statements, asyncpg's 4-statement reset query counted as one round trip."""
        if self.statements is None or self.resets is None:
            return None
        return self.statements - 3 * self.resets

    @property
    def polite(self) -> bool:
        return not (
            self.gap_hosts or self.crowded_hosts or self.robots_not_once or self.shared_hosts
        )


def crawler_env() -> dict[str, str]:
    """perf.py's environment, with this tree first on the path (the console script runs it)."""
    env = perf.quiet_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(perf.REPO), env.get("PYTHONPATH")]))
    return env


def config_text(bench: perf.Bench, db: Path | None, url: str | None, settings: Settings) -> str:
    """perf.py's crawler config for the 64-host run; on PostgreSQL, storage.url for the path."""
    text = perf.crawler_config(
        bench, db or Path("unused.db"), delay=settings.delay, per_host_concurrency=settings.per_host
    )
    if url is None:
        return text
    head, found, _ = text.rpartition("[storage]\n")
    assert found, "perf.crawler_config ends with its [storage] table"
    return f'{head}[storage]\nurl = "{url}"\nstore_text = false\n'


def run_crawl(
    bench: perf.Bench,
    nginx: Nginx,
    pg: StatsServer,
    backend: str,
    processes: int,
    round_no: int,
    env: dict[str, str],
    settings: Settings,
) -> Run:
    work = Path(tempfile.mkdtemp(prefix=f"scale-{backend}-{processes}-{round_no}-", dir=bench.tmp))
    db = work / "crawl.db" if backend == "sqlite" else None
    dbname = f"scale_{round_no}_{processes}"
    url = pg.create_database(dbname) if backend == "postgres" else None
    conf = work / "crawler.toml"
    conf.write_text(config_text(bench, db, url, settings))
    cmd = [str(perf.REPO / ".venv" / "bin" / "crawler"), "crawl", str(conf), "--quiet"]
    nginx_pid = int((nginx.prefix / "nginx.pid").read_text())
    log = nginx.prefix / "scale-access.log"
    offset = log.stat().st_size if log.exists() else 0
    if url is not None:
        pg.psql("SELECT pg_stat_statements_reset(), pg_stat_reset_shared('wal')")
    server0, nginx0, busy0 = tree_cpu(pg.postmaster), tree_cpu(nginx_pid), machine_busy()
    sockets = Sockets(PORT)
    started = time.monotonic()
    procs = [Process.start(cmd, work / f"process-{n}.txt", env) for n in range(processes)]
    pids: dict[int, int] = {}
    while any(proc.popen.poll() is None for proc in procs):
        for number, proc in enumerate(procs):
            if number not in pids.values() and (pid := proc.crawler_pid) is not None:
                pids[pid] = number
        sockets.poll(pids)
        time.sleep(POLL)
    wall = time.monotonic() - started
    results = [proc.result() for proc in procs]
    server_cpu = tree_cpu(pg.postmaster) - server0 if url is not None else 0.0
    nginx_cpu = tree_cpu(nginx_pid) - nginx0
    busy = machine_busy() - busy0
    crawler_cpu = sum(cpu for _, cpu, _ in results)
    run = Run(
        backend=backend,
        processes=processes,
        exits=[code for code, _, _ in results],
        wall=wall,
        crawler_cpu=crawler_cpu,
        server_cpu=server_cpu,
        nginx_cpu=nginx_cpu,
        other_cpu=max(0.0, busy - crawler_cpu - server_cpu - nginx_cpu),
        rss_mb=max(rss for _, _, rss in results),
    )
    check_log(run, bench, log, offset, sockets, settings)
    if url is None:
        assert db is not None
        read_sqlite(run, db)
    else:
        read_postgres(run, pg, dbname)
        pg.drop_database(dbname)  # its autovacuum would charge the next run
    if not (run.correct and run.polite):
        run.outputs = [proc.output.read_text(errors="replace")[-4000:] for proc in procs]
    return run


def check_log(
    run: Run, bench: perf.Bench, log: Path, offset: int, sockets: Sockets, settings: Settings
) -> None:
    """The run's requests from nginx's access log: page set, robots.txt, politeness, and
    which process sent each."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    hits: list[tuple[Request, int | None, int]] = []  # request, process number, status
    for line in lines:
        match = LOG_LINE.match(line)
        if match and match.group(7) == perf.AGENTS["crawler"]:
            end, took, host, status, _method, path, agent = match.groups()
            hit = Request.from_log(host, path, float(end) - float(took), float(end), agent)
            hits.append((hit, sockets.owner(int(line.rpartition(" ")[2])), int(status)))
    pages = Counter(f"{h.host} {h.path}" for h, _, _ in hits if h.path != "/robots.txt")
    expected = bench.truth.requests()
    run.requested = sum(pages.values())
    run.missing = len(expected.keys() - pages.keys())
    run.extra = len(pages.keys() - expected.keys())
    run.twice = run.requested - len(pages)
    run.doubles = [
        f"{h.path} on {h.host}: process {owner}, {h.start:.3f}-{h.end:.3f}, status {status}"
        for h, owner, status in sorted(hits, key=lambda hit: (hit[0].host, hit[0].path))
        if h.path != "/robots.txt" and pages[f"{h.host} {h.path}"] > 1
    ]
    by_host: dict[str, list[tuple[Request, int | None]]] = defaultdict(list)
    for hit, owner, _ in hits:
        by_host[hit.host].append((hit, owner))
    robots = Counter(h.host for h, _, _ in hits if h.path == "/robots.txt")
    run.robots_not_once = sum(1 for host in bench.hosts if robots[host] != 1)
    delay, floor = settings.delay, settings.delay - 2 * SLACK
    run.gap_hosts = sum(
        1 for one in by_host.values() if delay and min_gap([h for h, _ in one]) < floor
    )
    sure = [most_open([h for h, _ in one], -SLACK / 2) for one in by_host.values()]
    maybe = [most_open([h for h, _ in one], SLACK / 2) for one in by_host.values()]
    run.crowded_hosts = sum(1 for most in sure if most > settings.per_host)
    run.most_in_flight = max(sure, default=0)
    run.most_in_flight_maybe = max(maybe, default=0)
    run.unattributed = sum(1 for _, owner, _ in hits if owner is None)
    for one in by_host.values():
        shared, handovers = one_at_a_time(one)
        run.shared_hosts += shared
        run.handovers += handovers


def most_open(hits: list[Request], widen: float) -> int:
    """The most requests open at once among `hits` (tests/kit/site.py's max_in_flight), each
    request's interval widened by `widen` seconds on both sides (negative: narrowed; an
    interval narrowed to nothing counts for nothing). nginx logs to the millisecond, and a
    request served within one as starting and ending at the same time: narrowed by 1 ms the
    count is one that surely happened, widened by 1 ms one that may have."""
    spans = [(h.start - widen, h.end + widen) for h in hits]
    events = sorted([(a, 1) for a, b in spans if b > a] + [(b, -1) for a, b in spans if b > a])
    most = current = 0
    for _, step in events:  # at equal times the end (-1) comes first
        current += step
        most = max(most, current)
    return most


def one_at_a_time(hits: list[tuple[Request, int | None]]) -> tuple[int, int]:
    """For one host's requests: 1 if a process started one while another process still had
    one open (beyond the log's precision), else 0; and how often the sender changed."""
    last_end: dict[int, float] = {}
    shared = handovers = 0
    previous: int | None = None
    for hit, owner in sorted(hits, key=lambda pair: pair[0].start):
        if owner is None:
            continue
        if any(q != owner and end > hit.start + SLACK for q, end in last_end.items()):
            shared = 1
        if previous is not None and owner != previous:
            handovers += 1
        previous = owner
        last_end[owner] = max(last_end.get(owner, 0.0), hit.end)
    return shared, handovers


def read_sqlite(run: Run, db: Path) -> None:
    with sqlite3.connect(db) as conn:
        run.pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
        runs = conn.execute("SELECT pages, lag_p99_ms FROM runs ORDER BY id").fetchall()
    run.split = sorted((row[0] for row in runs), reverse=True)
    run.lag_p99_ms = max((row[1] for row in runs if row[1] is not None), default=None)


def read_postgres(run: Run, pg: StatsServer, dbname: str) -> None:
    ((pages,),) = pg.rows("SELECT count(*) FROM pages", dbname)
    run.pages = int(pages)
    runs = pg.rows("SELECT pages, coalesce(lag_p99_ms, -1) FROM runs ORDER BY id", dbname)
    run.split = sorted((int(row[0]) for row in runs), reverse=True)
    lags = [float(row[1]) for row in runs if float(row[1]) >= 0]
    run.lag_p99_ms = max(lags, default=None)
    mine = f"dbid = (SELECT oid FROM pg_database WHERE datname = '{dbname}')"
    ((calls,),) = pg.rows(f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE {mine}")
    run.statements = int(calls)
    ((commits,),) = pg.rows(f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{dbname}'")
    run.transactions = int(commits)
    ((wal,),) = pg.rows("SELECT wal_bytes FROM pg_stat_wal")  # the whole server's: only ours ran
    run.wal_bytes = int(wal)
    ((resets,),) = pg.rows(
        f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE {mine}"
        f" AND query = '{RESET_QUERY}'"
    )
    run.resets = int(resets)
    timed = pg.rows(
        "SELECT round(total_exec_time), calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
        f" FROM pg_stat_statements WHERE {mine} ORDER BY total_exec_time DESC"
        f" LIMIT {TOP_STATEMENTS}"
    )
    run.timed = [(float(row[0]), int(row[1]), "|".join(row[2:]).strip()) for row in timed]
    tables = pg.rows(
        "SELECT relname, seq_scan, coalesce(idx_scan, 0), n_live_tup, autovacuum_count,"
        " autoanalyze_count FROM pg_stat_user_tables ORDER BY relname",
        dbname,
    )
    run.tables = [" ".join(row) for row in tables]
    top = pg.rows(
        "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
        f" FROM pg_stat_statements WHERE {mine} ORDER BY calls DESC LIMIT {TOP_STATEMENTS}"
    )
    run.top = [(int(row[0]), "|".join(row[1:]).strip()) for row in top]


# ------------------------------------------------------------------------------------ report


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def per_page(count: int | None, run: Run) -> float | None:
    return None if count is None else count / max(run.pages, 1)


COLUMNS: list[tuple[str, Callable[[Run], float | None], str]] = [
    ("pages", lambda r: r.pages, ".0f"),
    ("wall s", lambda r: r.wall, ".2f"),
    ("pages/s", lambda r: r.rate, ".0f"),
    ("CPU ms/page (crawlers + PG)", lambda r: r.cpu_ms, ".2f"),
    ("crawlers", lambda r: r.per_page(r.crawler_cpu), ".2f"),
    ("PG server", lambda r: r.per_page(r.server_cpu), ".2f"),
    ("nginx", lambda r: r.per_page(r.nginx_cpu), ".2f"),
    ("other", lambda r: r.per_page(r.other_cpu), ".2f"),
    ("peak RSS MB", lambda r: r.rss_mb, ".0f"),
    ("statements/page", lambda r: per_page(r.statements, r), ".2f"),
    ("round trips/page", lambda r: per_page(r.round_trips, r), ".2f"),
    ("transactions/page", lambda r: per_page(r.transactions, r), ".2f"),
    ("WAL KB/page", lambda r: per_page(r.wal_bytes and r.wal_bytes // 1024, r), ".1f"),
    ("lag p99 ms", lambda r: r.lag_p99_ms, ".1f"),
]


def median(runs: list[Run], value: Callable[[Run], float | None]) -> float | None:
    values = [v for v in (value(r) for r in runs) if v is not None]
    return statistics.median(values) if values else None


def report(results: dict[tuple[str, int], list[Run]], settings: Settings) -> tuple[str, bool]:
    rounds = max(len(runs) for runs in results.values())
    extra = f", PostgreSQL with {', '.join(settings.pg_set)}" if settings.pg_set else ""
    delay = f"delay {settings.delay:g}" if settings.delay else "no delay"
    lines = [
        f"Machine: {machine()}.",
        "",
        f"**64 hosts, {settings.per_host} requests per host at once, {delay}, concurrency"
        f" {perf.CONCURRENCY} per process**{extra}"
        f" (median of {rounds} round{'s' * (rounds > 1)};"
        " CPU columns after the first are ms a page; nginx and other are not in the total)",
        "",
        "| run | " + " | ".join(name for name, _, _ in COLUMNS) + " | pages by process |",
        "|---|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for runs in results.values():
        cells = [fmt(median(runs, value), spec) for _, value, spec in COLUMNS]
        split = " + ".join(str(n) for n in runs[-1].split)
        lines.append(f"| {runs[0].label} | " + " | ".join(cells) + f" | {split} |")
    lines.append("")
    every = [run for runs in results.values() for run in runs]
    checks = [
        (
            "every run fetched the ground truth's pages, none twice, every process exited 0",
            all(run.correct for run in every),
        ),
        (
            "politeness from nginx's log: robots.txt once per host, no gap below the delay,"
            f" never more than {settings.per_host} requests open on a host (most seen: at least"
            f" {max(run.most_in_flight for run in every)}, at most"
            f" {max(run.most_in_flight_maybe for run in every)} within the log's millisecond),"
            " no host with two processes'"
            " requests open at once (hosts that changed process:"
            f" {', '.join(str(run.handovers) for run in every)}; requests of unknown process:"
            f" {', '.join(str(run.unattributed) for run in every)})",
            all(run.polite for run in every),
        ),
    ]
    sqlite, pg1 = results.get(("sqlite", 1)), results.get(("postgres", 1))
    if sqlite and pg1:
        ratio = (median(pg1, lambda r: r.cpu_ms) or 0) / (median(sqlite, lambda r: r.cpu_ms) or 1)
        text = f"CPU per page on PostgreSQL (1 process) <= {TARGET}x SQLite's ({ratio:.2f}x)"
        checks.append((text, ratio <= TARGET))
    ok = True
    for text, held in checks:
        ok = ok and held
        lines.append(f"- {'PASS' if held else 'FAIL'}: {text}")
    if pg1 and pg1[-1].timed:
        run = pg1[-1]
        lines += [
            "",
            f"Where the server's time went in the 1-process PostgreSQL run ({run.pages:,} pages;"
            " pg_stat_statements' execution time, which leaves out parsing, binding and the"
            " protocol):",
            "",
            "| exec ms/page | calls/page | statement |",
            "|---:|---:|---|",
        ]
        for ms, calls, text in run.timed:
            shown = text.replace("|", "\\|")
            lines.append(f"| {ms / run.pages:.3f} | {calls / run.pages:.3f} | `{shown}` |")
    return "\n".join(lines), ok


def details(results: dict[tuple[str, int], list[Run]]) -> str:
    """Each PostgreSQL run's statements by calls and by time, and its tables' scans."""
    out = []
    for runs in results.values():
        for n, run in enumerate(runs, 1):
            if run.backend != "postgres":
                continue
            out.append(
                f"{run.label}, round {n}: CPU s crawlers {run.crawler_cpu:.1f}, server"
                f" {run.server_cpu:.1f}, nginx {run.nginx_cpu:.1f}, other"
                f" {run.other_cpu:.1f}; wall {run.wall:.1f} s"
            )
            out += [f"  calls {calls:7d}  {text}" for calls, text in run.top]
            out += [f"  {ms:8.0f} ms {calls:7d} calls  {text}" for ms, calls, text in run.timed]
            out += [
                f"  table (seq, idx scans, rows, autovacuum, autoanalyze): {t}" for t in run.tables
            ]
    return "\n".join(out)


def failures(results: dict[tuple[str, int], list[Run]]) -> str:
    """What each failed run's processes printed."""
    out = []
    for runs in results.values():
        for n, run in enumerate(runs, 1):
            if run.correct and run.polite:
                continue
            out.append(
                f"{run.label}, round {n}: pages {run.pages}, requested {run.requested},"
                f" missing {run.missing}, extra {run.extra}, twice {run.twice},"
                f" exits {run.exits}, robots not once {run.robots_not_once},"
                f" hosts with short gaps {run.gap_hosts}, crowded {run.crowded_hosts},"
                f" shared by two processes at once {run.shared_hosts}"
            )
            out += [f"  fetched twice: {line}" for line in run.doubles]
            for i, text in enumerate(run.outputs):
                out.append(f"--- process {i} output (last 4000 characters):\n{text}")
    return "\n".join(out)


def machine() -> str:
    postgres = str(find_bindir() / "postgres")
    pg = subprocess.run([postgres, "--version"], capture_output=True, text=True, check=False)
    # perf.py's line names wget's and Scrapy's versions too, which play no part here.
    parts = [p for p in perf.environment().split("; ") if not p.startswith(("GNU Wget", "Scrapy"))]
    return "; ".join([*parts, pg.stdout.strip()])


# -------------------------------------------------------------------------------------- main


def plan(processes: list[int]) -> list[tuple[str, int]]:
    return [("sqlite", 1)] + [("postgres", n) for n in processes]


def run_all(
    args: argparse.Namespace, settings: Settings, tmp: Path
) -> dict[tuple[str, int], list[Run]]:
    started = time.monotonic()
    sites_dir = tmp / "sites"
    site = write_multihost(sites_dir, hosts=64, pages=300, port=PORT)
    bench = perf.multihost_bench(site, tmp)
    print(f"site and ground truth in {time.monotonic() - started:.1f} s", file=sys.stderr)
    env = crawler_env()
    perf.warm_up(env, ["crawler"])
    results: dict[tuple[str, int], list[Run]] = {key: [] for key in plan(args.processes)}
    servers = [server("", PORT, sites_dir, per_address=True), scale_log(tmp / "nginx")]
    pg = StatsServer(dict(setting.split("=", 1) for setting in settings.pg_set))
    with pg, Nginx(tmp / "nginx", servers, probe=("127.0.1.1", PORT)) as nginx:
        for round_no in range(args.rounds):
            for backend, processes in plan(args.processes):
                run = run_crawl(bench, nginx, pg, backend, processes, round_no, env, settings)
                results[backend, processes].append(run)
                print(
                    f"  {run.label}, round {round_no + 1}/{args.rounds}: {run.pages} pages"
                    f" in {run.wall:.1f} s, exits {run.exits}",
                    file=sys.stderr,
                )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--processes", default="1,2,4", help="PostgreSQL runs, comma-separated")
    parser.add_argument(
        "--write-readme", action="store_true", help="rewrite the scale table in bench/README.md"
    )
    parser.add_argument(
        "--pg-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PostgreSQL server setting for every run (repeatable; for experiments)",
    )
    parser.add_argument(
        "--delay", type=float, default=0.0, help="politeness.delay (default 0, as perf.py)"
    )
    parser.add_argument(
        "--per-host",
        type=int,
        default=perf.CONCURRENCY,
        help=f"politeness.per_host_concurrency (default {perf.CONCURRENCY}, as perf.py)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    args.processes = [int(n) for n in args.processes.split(",")]
    settings = Settings(args.delay, args.per_host, tuple(args.pg_set))
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    os.chmod(tmp, 0o755)  # nginx workers run as nobody when started by root
    started = time.monotonic()
    try:
        results = run_all(args, settings, tmp)
        table, ok = report(results, settings)
    except (BenchError, PgNotFoundError, PgServerError) as exc:
        print(f"scale: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    print(table)
    print(details(results), file=sys.stderr)
    trouble = failures(results)
    if trouble:
        print(f"\n{trouble}", file=sys.stderr)
    print(f"benchmark took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.write_readme:
        stamp = time.strftime("%Y-%m-%d")
        body = f"Latest run, {stamp}: `make bench-scale`\n\n{table}"
        perf.rewrite_section(TABLE_START, TABLE_END, body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
