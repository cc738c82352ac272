"""The `crawler` command as a user runs it: real processes, a real server, a real database."""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from conftest import DemoServer
from kit import LOG, finish, run_cli_async, started_cli, write_demo_config

from crawler.demo_site import DEMO_HOSTS, expected_pages


def _count(db: Path, sql: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        value: int = conn.execute(sql).fetchone()[0]
    return value


async def test_crawl_stats_and_query(demo_server: DemoServer, tmp_path: Path) -> None:
    config = write_demo_config(tmp_path, demo_server.port)
    db = tmp_path / "crawl.db"

    code, _, err = await run_cli_async("crawl", str(config), "--quiet")

    assert code == 0, err
    assert _count(db, "SELECT count(*) FROM pages") == len(expected_pages(port=demo_server.port))

    code, out, _ = await run_cli_async("stats", str(db))
    assert code == 0
    pages = _count(db, "SELECT count(*) FROM pages")
    ok = _count(db, "SELECT count(*) FROM pages WHERE status BETWEEN 200 AND 299")
    skipped = _count(db, "SELECT count(*) FROM urls WHERE state = 'skipped'")
    assert f"pages      {pages}" in out
    assert f"2xx {ok}" in out
    assert f"skipped {skipped}" in out
    assert "finished" in out

    code, out, _ = await run_cli_async("stats", str(db), "--hosts")
    assert code == 0
    assert all(host in out for host in DEMO_HOSTS)

    sql = "SELECT url, status, depth FROM pages ORDER BY url"
    code, out, _ = await run_cli_async("query", str(db), sql, "--format", "csv")
    assert code == 0
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["url", "status", "depth"]
    assert len(table) == pages + 1

    code, out, _ = await run_cli_async("query", str(db), sql, "--format", "json")
    assert code == 0
    assert {row["url"]: row["depth"] for row in json.loads(out)} == expected_pages(
        port=demo_server.port
    )


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("DELETE FROM pages", id="delete"),
        pytest.param("UPDATE urls SET state = 'queued'", id="update"),
        pytest.param("DROP TABLE links", id="drop"),
        pytest.param("CREATE TABLE mine (x)", id="create"),
    ],
)
async def test_query_refuses_writes(demo_server: DemoServer, tmp_path: Path, sql: str) -> None:
    config = write_demo_config(tmp_path, demo_server.port, max_pages=5)
    db = tmp_path / "crawl.db"
    assert (await run_cli_async("crawl", str(config), "--quiet"))[0] == 0
    before = db.read_bytes()

    code, _, err = await run_cli_async("query", str(db), sql)

    assert code == 2
    assert err.count("\n") == 1
    assert "read-only" in err
    assert "Traceback" not in err
    assert db.read_bytes() == before
    assert _count(db, "SELECT count(*) FROM pages") == 5


async def test_query_and_stats_user_errors(tmp_path: Path) -> None:
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello", encoding="utf-8")
    for args in (
        ("query", str(tmp_path / "missing.db"), "SELECT 1"),
        ("query", str(not_db), "SELECT 1"),
        ("stats", str(tmp_path / "missing.db")),
    ):
        code, _, err = await run_cli_async(*args)
        assert code == 2, args
        assert err.count("\n") == 1, err
        assert "Traceback" not in err


async def test_resume_needs_an_unfinished_crawl(demo_server: DemoServer, tmp_path: Path) -> None:
    config = write_demo_config(tmp_path, demo_server.port, max_pages=5)

    code, _, err = await run_cli_async("resume", str(config))
    assert code == 2
    assert "no crawl database" in err

    assert (await run_cli_async("crawl", str(config), "--quiet"))[0] == 0
    code, _, err = await run_cli_async("resume", str(config))
    assert code == 0  # stopped by max_pages with URLs left queued: resume continues
    config.write_text(config.read_text().replace("max_pages = 5", ""), encoding="utf-8")
    assert (await run_cli_async("resume", str(config), "--quiet"))[0] == 0
    code, _, err = await run_cli_async("resume", str(config))
    assert code == 2  # finished: nothing left
    assert "holds no unfinished crawl" in err
    (tmp_path / "crawl.db").unlink()
    (tmp_path / "crawl.db").write_text("not sqlite", encoding="utf-8")
    code, _, err = await run_cli_async("resume", str(config))
    assert code == 2
    assert err.count("\n") == 1


async def test_sigint_stops_gracefully_and_resume_completes(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    config = write_demo_config(tmp_path, demo_server.port, delay=0.05)
    db = tmp_path / "crawl.db"
    async with started_cli("crawl", str(config), stdout=False) as process:
        await demo_server.app[LOG].seen(40)
        process.send_signal(signal.SIGINT)
        code, _, err = await finish(process, 30)

    assert code == 130
    assert f"crawler resume {config}" in err
    interrupted = _count(db, "SELECT count(*) FROM pages")
    assert 0 < interrupted < len(expected_pages(port=demo_server.port))

    code, _, err_text = await run_cli_async("resume", str(config), "--quiet")

    assert code == 0, err_text
    with closing(sqlite3.connect(db)) as conn:
        stored = dict(conn.execute("SELECT url, depth FROM pages").fetchall())
        outcomes = [o for (o,) in conn.execute("SELECT outcome FROM runs ORDER BY id")]
    assert stored.keys() == expected_pages(port=demo_server.port).keys()
    assert outcomes == ["interrupted", "finished"]
    # No committed page was requested again by the resumed run.
    requested = [(r.host, r.path) for r in demo_server.app[LOG] if r.path != "/robots.txt"]
    assert len(requested) - len(set(requested)) <= 3  # at most those in flight: one per host


async def test_bad_local_paths_exit_2(demo_server: DemoServer, tmp_path: Path) -> None:
    code, _, err = await run_cli_async("crawl", str(tmp_path))  # a folder given as the config file
    assert code == 2
    assert err.count("\n") == 1
    assert "cannot read config file" in err

    config = write_demo_config(tmp_path, demo_server.port)
    (tmp_path / "crawl.db").mkdir()  # storage.path is a folder
    code, _, err = await run_cli_async("crawl", str(config), "--quiet")
    assert code == 2
    assert err.count("\n") == 1
    assert "storage.path" in err
    assert not demo_server.app[LOG]  # nothing was requested


async def test_full_disk_stops_with_a_clear_line_and_keeps_committed_pages(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    config = write_demo_config(tmp_path, demo_server.port)
    db = tmp_path / "crawl.db"
    limit = 256 * 1024  # bytes any one file may grow to: the "disk" fills after a few pages
    prelude = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
    )
    code, _, text = await run_cli_async("crawl", str(config), "--quiet", prelude=prelude)

    assert code == 1
    assert text.count("\n") == 1, text
    # Whichever write the full disk refuses first (a save, or a claim or renewal of hosts),
    # the line says what the crawler was doing and what the disk said.
    assert text.startswith("crawler: error: cannot "), text
    assert "disk" in text, text
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        pages = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    assert 0 < pages < len(expected_pages(port=demo_server.port))


async def test_crawl_again_says_there_is_nothing_left(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    config = write_demo_config(tmp_path, demo_server.port)
    assert (await run_cli_async("crawl", str(config), "--quiet"))[0] == 0
    requests = len(demo_server.app[LOG])

    code, _, err = await run_cli_async("crawl", str(config))

    assert code == 0
    assert "nothing was left to crawl" in err
    assert len(demo_server.app[LOG]) == requests  # not one request more


async def test_a_postgresql_crawl_names_its_database_without_the_password(
    demo_server: DemoServer, tmp_path: Path, pg_url: str
) -> None:
    config = write_demo_config(tmp_path, demo_server.port)
    with_password = pg_url.replace("postgres@", "postgres:hunter2@", 1)  # trust: not checked
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('path = "crawl.db"', f'url = "{with_password}"'), "utf-8")

    code, _, first = await run_cli_async("crawl", str(config))
    again, _, second = await run_cli_async("crawl", str(config))

    assert (code, again) == (0, 0)
    assert f"→ {pg_url}\n" in first
    assert f"nothing was left to crawl in {pg_url}; to crawl again" in second
    assert "set another storage.url," in second
    for err in (first, second):
        assert "hunter2" not in err
        assert "crawl.db" not in err
    assert not (tmp_path / "crawl.db").exists()
