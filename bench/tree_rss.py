"""The peak resident memory of a crawl's whole process tree (the crawl and its helpers).

GNU time reports the largest single process's peak only. `TreeRSS` samples /proc in a thread
(every 20 ms) and sums VmRSS over the crawl processes (`crawler crawl` or `-m crawler crawl`
under `root`) and all their descendants: shared pages count once per process, so the figure is
an upper bound. As a command, it runs another and prints the tree's peak, what each process held
at that moment, and each process's own peak (whenever it came):

    .venv/bin/python bench/tree_rss.py -- .venv/bin/python bench/traps.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

INTERVAL = 0.02  # seconds between samples


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:  # the process ended meanwhile
        pass
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _is_crawl(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(
        a.endswith(b"crawler") and args[i + 1 : i + 2] == [b"crawl"] for i, a in enumerate(args)
    )


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        pids.append(current := todo.pop())
        todo += _children(current)
    return pids


def _crawls(root: int) -> list[int]:
    """The outermost crawl processes under `root` (`--processes N` starts crawls in a crawl)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if _is_crawl(pid):
            found.append(pid)
        else:
            todo += _children(pid)
    return found


def _kind(pid: int) -> str:
    """What a process of the tree is: its command line's last word that names a module."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    return " ".join(a for a in args[:4] if a and not a.startswith("/"))[:60]


def crawl_tree_kb(root: int) -> int:
    """Sum of VmRSS (kB) over the crawl processes under `root` and their descendants."""
    return sum(_rss_kb(pid) for crawl in _crawls(root) for pid in _tree(crawl))


def crawl_tree_parts(root: int) -> dict[int, tuple[str, int]]:
    """pid: (what it is, VmRSS kB) for each process of the crawl's tree."""
    return {pid: (_kind(pid), _rss_kb(pid)) for crawl in _crawls(root) for pid in _tree(crawl)}


def _descendants(root: int) -> list[int]:
    """Every process under `root`, `root` itself left out (a wrapper such as GNU time)."""
    return [pid for child in _children(root) for pid in _tree(child)]


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _is_text_helper(pid: int) -> bool:
    try:
        return b"crawler.text.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class TreeRSS:
    """Context manager: samples `crawl_tree_kb(root)` until exit; `peak_kb` the largest, and
    `helper_cpu`, the text helpers' CPU seconds as last seen (a sample's lag short).

    With `crawls_only=False` it samples every process under `root` instead (any program, not
    only a crawl; `root` itself left out), and `tree_cpu` sums each one's own CPU seconds as
    last seen: a lower bound of the tree's, whether or not its parents wait for them."""

    def __init__(self, root: int, *, crawls_only: bool = True) -> None:
        self.root = root
        self.crawls_only = crawls_only
        self.peak_kb = 0
        self.peak_parts: dict[int, tuple[str, int]] = {}  # the processes at the peak
        self.own_peaks: dict[int, tuple[str, int]] = {}  # each process's largest sample
        self._helpers: dict[int, float] = {}
        self._cpu: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    @property
    def helper_cpu(self) -> float:
        return sum(self._helpers.values())

    @property
    def tree_cpu(self) -> float:
        return sum(self._cpu.values())

    def _sample(self) -> None:
        while not self._done.wait(INTERVAL):
            if self.crawls_only:
                parts = crawl_tree_parts(self.root)
            else:
                parts = {pid: (_kind(pid), _rss_kb(pid)) for pid in _descendants(self.root)}
            total = sum(kb for _, kb in parts.values())
            if total > self.peak_kb:
                self.peak_kb, self.peak_parts = total, parts
            for pid, (kind, kb) in parts.items():
                if kb > self.own_peaks.get(pid, ("", 0))[1]:
                    self.own_peaks[pid] = (kind, kb)
            for pid in parts:
                seconds = _cpu_seconds(pid)
                self._cpu[pid] = max(seconds, self._cpu.get(pid, 0.0))
                if _is_text_helper(pid):
                    self._helpers[pid] = seconds


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with subprocess.Popen(argv) as proc, TreeRSS(proc.pid) as tree:
        code = proc.wait()
    print(f"peak RSS of the crawl's process tree: {tree.peak_kb / 1024:.1f} MB")
    for pid, (kind, kb) in sorted(tree.peak_parts.items()):
        print(f"  {pid:>8}  {kb / 1024:7.1f} MB  {kind}")
    print("each process's own peak:")
    for pid, (kind, kb) in sorted(tree.own_peaks.items()):
        print(f"  {pid:>8}  {kb / 1024:7.1f} MB  {kind}")
    print(f"CPU of the text helpers: {tree.helper_cpu:.2f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
