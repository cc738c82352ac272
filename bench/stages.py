"""Where the crawler's CPU goes per page: py-spy samples of `crawler crawl` on the benchmark's
sites, summed by pipeline stage. This is the profile behind the targets `make bench` misses.

    make bench-profile
    .venv/bin/python bench/stages.py [--sites pgdocs,django,multihost] [--rate 250] [--text]
        [--write-readme]

The kernel gives each thread's CPU time (/proc); py-spy's samples split it. A main-thread sample
counts for the stage of its innermost crawler frame (STAGES): fetch.py and the aiohttp code it
calls is `fetch`, extract/html.py is `parse`, engine/workers.py the engine, and so on.
Event-loop frames with no crawler frame beneath (socket reads, aiohttp protocol callbacks) are
`event loop`. Other threads are told apart by their Python names (py-spy gives each thread's
name and kernel id), and their CPU is the kernel's: py-spy counts a thread waiting for the GIL,
or for a child process to exit, as busy, so its samples would give idle threads a share of the
others' CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from gensite import write_multihost
from nginx import BenchError, Nginx, server
from perf import (
    DOC_SITES,
    DOCS,
    DOCS_PORT,
    REPO,
    Bench,
    crawler_config,
    quiet_env,
    rewrite_section,
)
from truth import Truth

PY_SPY = REPO / ".venv" / "bin" / "py-spy"
PACKAGE = f"{REPO / 'crawler'}/"  # the crawler's own modules (the editable install runs these)
START, END = "<!-- profile table: start -->", "<!-- profile table: end -->"

# (stage, test on the innermost crawler frame's path in the package (a prefix: a file or a
# folder) and function), first match wins.
STAGES: list[tuple[str, str, str]] = [
    ("parse: regex pre-pass (linear guard for lexbor)", "extract/flatten.py", ""),
    ("parse: lexbor tree, walk, attributes", "extract/html.py", ""),
    ("links: resolve, normalize, scope (cached)", "extract/targets.py", ""),
    ("links: resolve, normalize, scope (cached)", "urls.py", ""),
    ("extract: page row, link rows, dedup", "extract/page.py", ""),
    ("extract: page row, link rows, dedup", "records.py", ""),
    ("fetch: aiohttp request and response", "fetch.py", ""),
    ("frontier and politeness", "frontier/", ""),
    ("frontier and politeness", "robots/", ""),
    ("engine: workers, extraction task", "engine/workers.py", ""),
    ("writer task: hand-over, batching", "engine/writer.py", ""),
    ("writer task: hand-over, batching", "storage/", ""),
    ("text stage (main process side)", "text/", ""),
]


def stage_of(stack: list[dict[str, str]]) -> str:
    """The stage of one main-thread sample; `stack` runs from the outermost frame inward."""
    if any("importlib" in frame.get("file", "") for frame in stack):
        return "start-up: imports"
    for frame in reversed(stack):
        path = frame.get("file", "")
        skipped = ("engine/crawl.py", "cli.py", "__init__.py")
        if not path.startswith(PACKAGE) or path.endswith(skipped):
            continue
        name = path.removeprefix(PACKAGE)  # e.g. extract/html.py
        for stage, file, function in STAGES:
            if name.startswith(file) and function in frame.get("name", ""):
                return stage
        return f"other: {name}"
    if any(frame.get("file", "") == f"{PACKAGE}engine/crawl.py" for frame in stack):
        return "engine: workers, extraction task"
    return "event loop: sockets, aiohttp callbacks, timers"


def summarize(speedscope: Path) -> tuple[Counter[str], dict[int, str]]:
    """The main thread's samples by stage, and the other threads' names by kernel id."""
    data = json.loads(speedscope.read_text())
    frames = data["shared"]["frames"]
    main: Counter[str] = Counter()
    names: dict[int, str] = {}
    for profile in data["profiles"]:
        samples = [[frames[i] for i in stack] for stack in profile["samples"]]
        if not any(stack and stack[0].get("name") == "<module>" for stack in samples[:50]):
            # the other threads start in threading.py; py-spy names them: Thread 123 "name"
            if found := re.match(r'Thread (\d+) "(.*)"', profile.get("name", "")):
                names[int(found[1])] = found[2]
            continue
        for stack, weight in zip(samples, profile["weights"], strict=True):
            main[stage_of(stack)] += weight
    return main, names


def thread_label(name: str) -> str:
    """What a thread of the crawl does, by its Python name."""
    if name.startswith("crawler-writer"):
        return "writer thread: SQLite inserts, commits"
    if "_conn" in name:  # aiosqlite's "Thread-N (_connection_worker_thread)"
        return "frontier reads (aiosqlite thread)"
    if name.startswith("asyncio-waitpid"):
        return "helper processes' exit watchers"
    if name.startswith("asyncio_"):
        return "asyncio.to_thread: pages of many links, robots.txt, ..."
    return f"thread {name}"


def child_of(pid: int) -> int:
    """The process py-spy started (it runs the crawler as its child)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for _ in range(200):
        found = children.read_text().split() if children.exists() else []
        if found:
            return int(found[0])
        time.sleep(0.01)
    raise BenchError("py-spy did not start the crawler")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread by kernel id, read until the process ends."""
    tick = os.sysconf("SC_CLK_TCK")
    last: dict[int, float] = {}
    while True:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            for tid in tids:
                fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1]
                utime, stime = fields.split()[11:13]
                last[tid] = (int(utime) + int(stime)) / tick
        except (FileNotFoundError, ProcessLookupError):
            break
        if not tids or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    return last


def profile_site(name: str, bench: Bench, work: Path, rate: int, text: bool) -> list[str]:
    db = work / f"{name}.db"
    conf = work / f"{name}.toml"
    conf.write_text(crawler_config(bench, db, text=text))
    out = work / f"{name}.speedscope"
    cmd = [str(PY_SPY), "record", "-r", str(rate), "-f", "speedscope", "-o", str(out), "--"]
    cmd += [str(REPO / ".venv" / "bin" / "crawler"), "crawl", str(conf), "--quiet"]
    spy = subprocess.Popen(cmd, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    crawl = child_of(spy.pid)
    cpu_by_thread = thread_cpu(crawl)
    _, errors = spy.communicate()
    if spy.returncode:
        raise BenchError(f"py-spy failed: {errors.decode(errors='replace').strip()}")
    with sqlite3.connect(db) as conn:
        pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    main, names = summarize(out)
    main_cpu = cpu_by_thread.pop(crawl, 0.0)
    threads: dict[str, float] = {}
    for tid, cpu in cpu_by_thread.items():
        label = thread_label(names.get(tid, f"{tid}, unnamed"))
        threads[label] = threads.get(label, 0.0) + cpu
    by_cpu = sorted(threads.items(), key=lambda item: -item[1])
    rows = scaled(main, main_cpu, "main thread: ") + by_cpu
    total = main_cpu + sum(threads.values())
    lines = [
        f"**{bench.title}**: {pages:,} pages; {1000 * total / pages:.2f} ms of CPU a page"
        f" ({1000 * main_cpu / pages:.2f} in the event loop's thread)",
        "",
        "| where | ms/page | share |",
        "|---|---:|---:|",
    ]
    for label, seconds in rows:
        lines.append(f"| {label} | {1000 * seconds / pages:.3f} | {100 * seconds / total:.0f}% |")
    return lines


def scaled(samples: Counter[str], cpu: float, prefix: str) -> list[tuple[str, float]]:
    """Each label's share of the samples, times the CPU seconds they stand for."""
    count = sum(samples.values())
    return (
        [(prefix + label, cpu * n / count) for label, n in samples.most_common()] if count else []
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="pgdocs,django,multihost")
    parser.add_argument("--rate", type=int, default=250, help="samples a second")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument(
        "--text", action="store_true", help="store_text = true (the helpers' CPU is not counted)"
    )
    args = parser.parse_args(argv)
    if not PY_SPY.exists():
        print(f"stages: {PY_SPY} not found: make bench-profile installs it", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="perf-profile-"))
    os.chmod(work, 0o755)  # nginx workers run as nobody when started by root
    try:
        site = write_multihost(work / "sites", hosts=64, pages=300)
        servers = [server("", site.port, work / "sites", per_address=True)]
        servers.append(server("127.0.0.1", DOCS_PORT, DOCS))
        django = DOC_SITES["django"]
        servers.append(server(django.address, django.port, django.root))
        benches = {
            "multihost": Bench(
                "multihost", "64 hosts", site.seeds()[:1], site.hosts, Truth(), work
            ),
            "pgdocs": Bench(
                "pgdocs", "PostgreSQL 15 docs", [f"http://127.0.0.1:{DOCS_PORT}/index.html"],
                ["127.0.0.1"], Truth(), work,
            ),
            "django": Bench(
                "django", django.title, [f"http://{django.address}:{django.port}/index.html"],
                [django.address], Truth(), work,
            ),
        }  # fmt: skip
        lines: list[str] = []
        with Nginx(work / "nginx", servers, probe=("127.0.1.1", site.port)):
            for name in args.sites.split(","):
                lines += [*profile_site(name, benches[name], work, args.rate, args.text), ""]
    except BenchError as exc:
        print(f"stages: {exc}", file=sys.stderr)
        return 2
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    table = "\n".join(lines)
    print(table)
    if args.write_readme:
        rewrite_section(START, END, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
