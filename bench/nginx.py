"""An nginx of the benchmark's own: started from a config written into a temp dir, stopped on
exit, with an access log that says when each request started.

    with Nginx(tmp, [server("127.0.0.1", 8089, root=docs)]) as nginx:
        ...
    requests = read_log(nginx.access_log)

Each logged request is one `Request`: start time (nginx's `$msec`, the end, less
`$request_time`), server address, status, method, path and User-Agent.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


class BenchError(Exception):
    """The benchmark itself could not run (exit 2)."""


LOG_FORMAT = '$msec $request_time $server_addr $status "$request" "$http_user_agent"'
LOG_LINE = re.compile(r'(\S+) (\S+) (\S+) (\d{3}) "(\S+) (\S+)[^"]*" "([^"]*)"')


@dataclass(frozen=True, slots=True)
class Request:
    start: float  # seconds since the epoch, when nginx read the request
    host: str  # the server address it arrived on
    status: int
    method: str
    path: str  # as requested: path and ?query
    agent: str

    @property
    def key(self) -> str:
        """ "host path", as truth.Truth.requests() counts them."""
        return f"{self.host} {self.path}"


def server(address: str, port: int, root: Path | str, *, per_address: bool = False) -> str:
    """A server block serving `root` on address:port; with per_address, `listen port` on every
    address and serve root/<the address the request came to>."""
    listen = f"{port}" if per_address else f"{address}:{port}"
    folder = f"{root}/$server_addr" if per_address else f"{root}"
    return f"""    server {{
        listen {listen};
        root {folder};
        index index.html;
    }}"""


def config(prefix: Path, servers: list[str], workers: int) -> str:
    mime = Path("/etc/nginx/mime.types")
    types = f"include {mime};" if mime.exists() else "types { text/html html; text/css css; }"
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    blocks = "\n".join(servers)
    return f"""\
# Written by bench/nginx.py for one benchmark run.
daemon off;
worker_processes {workers};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    {types}
    default_type application/octet-stream;
    log_format bench '{LOG_FORMAT}';
    access_log {prefix / "access.log"} bench;
    keepalive_requests 1000000;
    open_file_cache max=10000;
{temp}
{blocks}
}}
"""


class Nginx:
    """nginx in the foreground for the `with` block; `workers` processes (1 leaves the other
    core to the crawler being measured)."""

    def __init__(self, prefix: Path, servers: list[str], probe: tuple[str, int], workers: int = 1):
        self.prefix = prefix
        self.access_log = prefix / "access.log"
        self._servers = servers
        self._probe = probe
        self._workers = workers
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise BenchError("nginx not found: apt-get install -y nginx (make bench-deps)")
        if _listening(*self._probe):
            raise BenchError(f"{self._probe[0]}:{self._probe[1]} is already taken")
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(config(self.prefix, self._servers, self._workers))
        out = self.prefix / "nginx.out"
        with out.open("wb") as log:
            cmd = [
                binary,
                "-c",
                str(conf),
                "-p",
                f"{self.prefix}/",
                "-e",
                str(self.prefix / "error.log"),
            ]
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not _listening(*self._probe):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"nginx did not start: {out.read_text(errors='replace')}")
            time.sleep(0.05)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: finish open requests, flush the log
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _listening(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((address, port)) == 0


def read_log(path: Path, since: int = 0) -> tuple[list[Request], int]:
    """The requests logged from byte offset `since` on, and the offset after them."""
    with path.open("rb") as log:
        log.seek(since)
        data = log.read()
    requests = []
    for line in data.decode(errors="replace").splitlines():
        match = LOG_LINE.match(line)
        if match:
            msec, took, host, status, method, target, agent = match.groups()
            start = float(msec) - float(took)
            requests.append(Request(start, host, int(status), method, target, agent))
    return requests, since + len(data)
