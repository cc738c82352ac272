"""A throwaway PostgreSQL server for the tests: `initdb` into a temporary folder, started on a
free 127.0.0.1 port and a unix socket in that folder, stopped and removed at the end.

PostgreSQL refuses to run as root, so as root (tests and CI run as root) the server runs as the
`postgres` system user through `runuser`; otherwise as the current user. Authentication is
`trust`, the superuser is `postgres`, durability is off (fsync, synchronous_commit,
full_page_writes): the data is thrown away anyway.

Fixtures (register with `pytest_plugins = ["pgserver"]` in tests/conftest.py):

- `pg_server` (session): the running `PgServer`.
- `make_pg_url` (function): `make_pg_url()` creates a fresh database and returns its URL; every
  database it made is dropped after the test.
- `pg_url` (function): the URL of one fresh database for this test, dropped after it.

Error handling: when no PostgreSQL server binaries can be found, `pg_server` fails the tests
that use it with a message saying how to install them (`make pg-deps`): it never skips.

PYTEST_DONT_REWRITE: no asserts here, and test modules may import this before pytest loads it
as a plugin.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

import pytest

SUPERUSER = "postgres"
HOST = "127.0.0.1"
VERSIONED_BINDIRS = "/usr/lib/postgresql/*/bin"  # Debian's layout, one folder per major version
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PgNotFoundError(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl) on this machine."""


class PgServerError(RuntimeError):
    """The throwaway server could not be set up, started, or asked something."""


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: `pg_config --bindir`, else the highest
    /usr/lib/postgresql/*/bin, else the one on PATH."""
    candidates: list[Path] = []
    try:
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
        )
        candidates.append(Path(out.stdout.strip()))
    except (OSError, subprocess.SubprocessError):
        pass  # no pg_config, or only libpq-dev's: try the next places
    versions = glob.glob(VERSIONED_BINDIRS)
    candidates += [Path(p) for p in sorted(versions, key=_version_key, reverse=True)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "psql")):
            return bindir
    raise PgNotFoundError(
        "PostgreSQL server binaries (initdb, pg_ctl, psql) not found: looked in "
        "`pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH. The PostgreSQL tests need "
        "a server: run `make pg-deps` (apt-get install postgresql)."
    )


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name  # /usr/lib/postgresql/15/bin -> "15"
    return tuple(int(part) for part in re.findall(r"\d+", version))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """A PostgreSQL server in a temporary folder, for the length of a `with` block.

    Resource handling: `__enter__` starts the server (and cleans up after itself if starting
    fails); `__exit__` stops it with `pg_ctl stop -m fast` (`-m immediate` if that fails) and
    removes the folder, whether or not the block raised.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir if bindir is not None else find_bindir()
        self.port = 0
        self.socket_dir = Path()
        self._as_postgres = os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        return self.socket_dir / "data"

    def url(self, dbname: str = "postgres") -> str:
        """The TCP URL of database `dbname`, as `storage.url` takes it."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{dbname}"

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        # In /tmp whatever TMPDIR says: postgres must reach it, and the socket's full path must
        # fit in 107 bytes.
        tmp = "/tmp" if os.path.isdir("/tmp") else None
        self.socket_dir = Path(tempfile.mkdtemp(prefix="pgtest-", dir=tmp))
        try:
            if self._as_postgres:
                user = pwd.getpwnam(SUPERUSER)
                os.chown(self.socket_dir, user.pw_uid, user.pw_gid)
            self._server_cmd(
                "initdb",
                f"--pgdata={self.data_dir}",
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
            # A free port can be taken between the probe and the bind: try a few.
            for attempt in itertools.count(1):
                self.port = free_port()
                try:
                    self._pg_ctl_start()
                    break
                except PgServerError:
                    if attempt == 3 or "in use" not in self._log():
                        raise
        except BaseException:
            self.stop()
            raise

    def _pg_ctl_start(self) -> None:
        options = {
            **SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
        }
        # pg_ctl hands -o to a shell: the temporary folder's name has no spaces or quotes.
        opts = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._server_cmd(
            "pg_ctl",
            "start",
            f"--pgdata={self.data_dir}",
            f"--log={self.socket_dir / 'server.log'}",
            "--wait",
            f"--timeout={START_TIMEOUT}",
            "-o",
            opts,
            timeout=START_TIMEOUT + 30,
        )

    def stop(self) -> None:
        if not self.socket_dir.parts:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                for mode in ("fast", "immediate"):
                    try:
                        self._server_cmd(
                            "pg_ctl", "stop", f"--pgdata={self.data_dir}", f"--mode={mode}", "-w"
                        )
                        break
                    except PgServerError:
                        if mode == "immediate":
                            raise
        finally:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = Path()

    def create_database(self, name: str) -> str:
        """Create database `name` (a plain lowercase identifier) and return its URL."""
        self.psql(f"CREATE DATABASE {_identifier(name)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, ending any connection still open to it."""
        self.psql(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run `sql` through psql on the unix socket; its unaligned, tuples-only output."""
        return self._run(
            [
                str(self.bindir / "psql"),
                f"--host={self.socket_dir}",
                f"--port={self.port}",
                f"--username={SUPERUSER}",
                f"--dbname={dbname}",
                "--no-psqlrc",
                "--no-align",
                "--tuples-only",
                "--set=ON_ERROR_STOP=1",
                f"--command={sql}",
            ]
        )

    def _server_cmd(self, tool: str, *args: str, timeout: float = 120) -> str:
        argv = [str(self.bindir / tool), *args]
        if self._as_postgres:
            runuser = shutil.which("runuser", path=f"{os.defpath}:/usr/sbin:/sbin") or "runuser"
            argv = [runuser, "-u", SUPERUSER, "--", *argv]
        return self._run(argv, timeout=timeout)

    def _run(self, argv: Sequence[str], timeout: float = 120) -> str:
        # PG* variables from the environment would aim the tools at another server.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            done = subprocess.run(
                argv,
                cwd=self.socket_dir,  # readable by postgres, unlike root's working directory
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PgServerError(f"{argv[0]!r} failed: {exc}") from exc
        if done.returncode != 0:
            raise PgServerError(
                f"{' '.join(argv)!r} exited {done.returncode}:\n{done.stdout}{done.stderr}"
                f"{self._log()}"
            )
        return done.stdout

    def _log(self) -> str:
        try:
            text = (self.socket_dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "server.log:\n" + text[-4000:]


def _identifier(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"database name {name!r}: use lowercase letters, digits and _")
    return name


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole session."""
    try:
        server = PgServer()
    except PgNotFoundError as exc:
        missing = str(exc)  # failed outside the handler: no "during handling" chain
    else:
        with server:
            yield server
        return
    pytest.fail(missing, pytrace=False)


_database_numbers = itertools.count(1)


@pytest.fixture
def make_pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """A factory: each call creates a fresh database and returns its URL; all are dropped after
    the test."""
    created: list[str] = []
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40] or "test"

    def factory() -> str:
        name = f"t{next(_database_numbers)}_{stem}"
        url = pg_server.create_database(name)
        created.append(name)
        return url

    yield factory
    for name in created:
        pg_server.drop_database(name)


@pytest.fixture
def pg_url(make_pg_url: Callable[[], str]) -> str:
    """The URL of a fresh database for this test, dropped after it."""
    return make_pg_url()
