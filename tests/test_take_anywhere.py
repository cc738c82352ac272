"""Text, search, JSON Lines and WARC end to end, on both backends: a site of known main text
and boilerplate (text_site.py) crawled for real, then read back through the commands."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from backends import Backend, pg_database_before, pg_rows
from kit import finish, run_in_thread, started_cli
from text_site import FOOTER, HOST, NAV_ITEMS, NOINDEX, OWL_PHRASE, PLAIN, SENT, TextSite
from text_site import make_text_site as make_site
from warcio.archiveiterator import ArchiveIterator

from crawler.engine.crawl import Crawler
from crawler.storage.postgres import PostgresStore
from crawler.storage.sqlite import SQLiteStore
from crawler.storage.sqlite_schema import MIGRATIONS

MAX_BYTES = 12_000  # /long is longer: stored truncated
WARCIO = Path(sys.executable).parent / "warcio"


async def crawled(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, **storage: Any
) -> tuple[TextSite, str]:
    """The text site crawled into `backend`; the site (with what it sent) and the DB argument."""
    server = await aiohttp_server(make_site())
    config = backend.config(
        tmp_path, [f"http://{HOST}:{server.port}/"], hosts=(HOST,), storage=storage,
        fetch={"max_bytes": MAX_BYTES},
    )  # fmt: skip
    result = await Crawler(config).run()
    assert result.outcome == "finished"
    site: TextSite = server.app[SENT]
    return site, backend.location


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`crawler ARGV` in a thread (the PostgreSQL reader runs an event loop of its own)."""
    ran = await run_in_thread(capsys, *argv)
    return ran.code, ran.out, ran.err


async def texts(backend: Backend) -> dict[str, str | None]:
    rows = await backend.rows("SELECT url, text FROM pages")
    return {url.split(str(HOST), 1)[1].split("/", 1)[1]: text for url, text in rows}


async def search(capsys: pytest.CaptureFixture[str], db: str, *terms: str) -> list[str]:
    code, out, err = await cli(capsys, "search", db, *terms, "--format", "json")
    assert code == 0, err
    return ["/" + row["url"].split("/", 3)[3] for row in json.loads(out)]


async def test_text_holds_the_main_content_and_search_ranks_it(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = await crawled(aiohttp_server, backend, tmp_path)
    text = await texts(backend)
    owls = text["owls"]
    assert owls is not None
    assert OWL_PHRASE in owls
    assert "An owl swallows its prey whole" in owls
    for boilerplate in (*NAV_ITEMS, FOOTER, "tracking", "color: green", "Herons"):
        assert boilerplate not in owls
    assert text[PLAIN.lstrip("/")] is None  # not HTML
    assert text[NOINDEX.lstrip("/")] is None  # the page asked not to be indexed

    assert await search(capsys, db, f'"{OWL_PHRASE}"') == ["/owls"]
    ranked = await search(capsys, db, "owls")
    assert ranked[:2] == ["/owls", "/hawks"]  # a title match above a mere mention
    assert "/herons" not in ranked  # the links to /owls on every page are not its text
    assert set(await search(capsys, db, "hawks", "OR", "herons")) == {"/hawks", "/herons"}
    assert await search(capsys, db, "hunt NOT night") == ["/hawks"]
    assert await search(capsys, db, "heronr*") == ["/herons"]
    assert await search(capsys, db, "(owls OR herons) AND fish") == ["/herons"]
    assert await search(capsys, db, "kingfisher", "--limit", "1") == ["/gzip"]

    code, out, err = await cli(capsys, "search", db, '"barn owl')
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "unbalanced quote" in err


async def test_search_output_has_url_title_and_a_marked_snippet(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = await crawled(aiohttp_server, backend, tmp_path)
    code, out, _ = await cli(capsys, "search", db, "pellets", "--format", "jsonl")
    assert code == 0
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["url"].endswith("/owls")
    assert row["title"] == "Owls"
    assert "**pellets**" in row["snippet"]


async def test_store_text_false_keeps_no_text_and_titles_stay_searchable(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = await crawled(aiohttp_server, backend, tmp_path, store_text=False)
    assert set((await texts(backend)).values()) == {None}
    assert await search(capsys, db, "Herons") == ["/herons"]
    assert await search(capsys, db, "fish") == []


async def test_jsonl_export_has_one_object_per_page(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = await crawled(aiohttp_server, backend, tmp_path)
    out = tmp_path / "pages.jsonl"
    code, _, err = await cli(capsys, "export", db, "--format", "jsonl", "-o", str(out))
    assert code == 0, err
    objects = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    urls = [url for (url,) in await backend.rows("SELECT url FROM pages ORDER BY id")]
    assert [o["url"] for o in objects] == urls
    for key in ("url", "status", "content_type", "title", "fetched_at", "depth", "text"):
        assert all(key in o for o in objects)
    owls = next(o for o in objects if o["url"].endswith("/owls"))
    assert (owls["status"], owls["title"], owls["truncated"]) == (200, "Owls", False)
    assert OWL_PHRASE in owls["text"]
    assert "body" not in owls


async def test_warc_export_holds_each_exchange_as_sent(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, db = await crawled(aiohttp_server, backend, tmp_path)
    out = tmp_path / "crawl.warc.gz"
    code, _, err = await cli(capsys, "export", db, "--format", "warc", "-o", str(out))
    assert code == 0, err
    records = _records(out)
    assert records[0]["type"] == "warcinfo"
    responses = {r["path"]: r for r in records if r["type"] == "response"}
    requests = {r["path"]: r for r in records if r["type"] == "request"}
    answered = await backend.rows("SELECT count(*) FROM pages WHERE status IS NOT NULL")
    # Every page but the noindex one, whose body was not kept.
    assert len(responses) == len(requests) == answered[0][0] - 1
    assert NOINDEX not in responses
    for path, record in responses.items():
        if path == "/robots.txt" or path not in site.sent:
            continue
        sent = site.sent[path]
        assert record["payload"] == sent[:MAX_BYTES], path
        assert record["http"].get_header("Content-Length") == str(len(record["payload"]))
        assert record["warc"].get_header("WARC-Truncated") == (
            "length" if len(sent) > MAX_BYTES else None
        )
        concurrent = requests[path]["warc"].get_header("WARC-Concurrent-To")
        assert concurrent == record["warc"].get_header("WARC-Record-ID")
    assert "/long" in responses
    gzipped = responses["/gzip"]["http"]
    assert gzipped.get_header("Content-Encoding") is None
    assert gzipped.get_header("X-Archive-Orig-Content-Encoding") == "gzip"
    request = requests["/owls"]["http"]
    assert (request.protocol, request.statusline) == ("GET", "/owls HTTP/1.1")
    assert request.get_header("User-Agent").startswith("crawler/")
    for command in ("check", "index"):
        done = await asyncio.to_thread(
            subprocess.run, [WARCIO, command, str(out)], capture_output=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    with gzip.open(out) as unzipped:
        assert unzipped.read(8) == b"WARC/1.1"


def _records(path: Path) -> list[dict[str, Any]]:
    found = []
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            found.append({
                "type": record.rec_type,
                "path": "/" + uri.split("/", 3)[3] if uri.count("/") >= 3 else uri,
                "warc": record.rec_headers,
                "http": record.http_headers,
                "payload": record.raw_stream.read(),
            })  # fmt: skip
    return found


async def test_warc_of_a_crawl_without_bodies_is_refused(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = await crawled(aiohttp_server, backend, tmp_path, store_body=False)
    out = tmp_path / "crawl.warc.gz"
    code, _, err = await cli(capsys, "export", db, "--format", "warc", "-o", str(out))
    assert code == 2
    assert "store_body = false" in err
    assert err.count("\n") == 1
    assert [name for name in _names(tmp_path) if "warc" in name] == []  # no .part either
    code, _, _ = await cli(capsys, "export", db, "--format", "jsonl", "-o", str(tmp_path / "x"))
    assert code == 0


@pytest.mark.parametrize("command", [["export", "--format", "jsonl"], ["search", "owls"]])
async def test_bad_databases_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    other = tmp_path / "other.db"
    await asyncio.to_thread(_make_sqlite, other)
    for db, expected in ((tmp_path / "missing.db", "no database"), (other, "not a crawl")):
        code, out, err = await cli(capsys, command[0], str(db), *command[1:])
        assert (code, out) == (2, "")
        assert expected in err
        assert err.count("\n") == 1


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def _make_sqlite(path: Path) -> None:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (x)")


async def test_an_interrupted_export_leaves_no_file(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    async with SQLiteStore.open(db):
        pass  # the schema
    await asyncio.to_thread(_add_pages, db, 1500, 32 * 1024)
    out = tmp_path / "crawl.warc.gz"
    partial = tmp_path / f".{out.name}.part"
    async with started_cli("export", str(db), "--format", "warc", "-o", str(out)) as process:
        await _stop_while_writing(process, partial)
        ran = await finish(process)
    assert ran.code == 130
    assert "export stopped" in ran.err
    assert "Traceback" not in ran.err
    assert [name for name in _names(tmp_path) if "warc" in name] == []


async def _stop_while_writing(process: asyncio.subprocess.Process, partial: Path) -> None:
    """SIGSTOP the export once it has begun its file, then SIGINT it and let it go on."""
    while not await asyncio.to_thread(partial.exists):
        assert process.returncode is None, "the export ended before it wrote anything"
        await asyncio.sleep(0.005)
    process.send_signal(signal.SIGSTOP)  # caught writing: .part there, the file not yet
    assert await asyncio.to_thread(partial.exists), "the export was done before it was stopped"
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGCONT)


def _add_pages(path: Path, count: int, size: int) -> None:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO pages (url, host, status, body, bytes, depth, fetched_at)"
            " VALUES (?, 'a.test', 200, ?, ?, 0, '2026-01-01T00:00:00.000Z')",
            ((f"http://a.test/{n}", os.urandom(size), size) for n in range(count)),
        )


async def test_an_older_database_gets_its_search_index_from_the_migration(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    insert = (
        "INSERT INTO pages (url, host, status, title, depth, fetched_at) VALUES"
        " ('http://a.test/', 'a.test', 200, 'Puffins of the north', 0, '2026-01-01T00:00:00Z')"
    )
    path = tmp_path / "old.db"
    await asyncio.to_thread(_old_sqlite, path, insert)
    await pg_database_before(pg_url, "text-search", insert)
    for db in (str(path), pg_url):
        code, _, err = await cli(capsys, "search", db, "puffins")
        assert code == 2
        assert "no search index" in err
    async with SQLiteStore.open(path), PostgresStore.open(pg_url):
        pass  # migrated
    for db in (str(path), pg_url):
        assert await search(capsys, db, "puffin") == ["/"]
    assert await asyncio.to_thread(_fts_tables_of, path, "pages") == ["pages_fts"]


def _fts_tables_of(path: Path, table: str) -> list[str]:
    """The FTS tables over `table`, found as Datasette finds them (an FTS virtual table whose
    SQL says content="table")."""
    import sqlite3
    from contextlib import closing

    pattern = f'%VIRTUAL TABLE%USING FTS%content="{table}"%'
    with closing(sqlite3.connect(path)) as db:
        found = db.execute(
            "SELECT name FROM sqlite_master WHERE rootpage = 0 AND sql LIKE ?", (pattern,)
        )
        return [name for (name,) in found]


def _old_sqlite(path: Path, insert: str) -> None:
    import sqlite3
    from contextlib import closing

    before = [name for name, _ in MIGRATIONS].index("text-search")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for _name, step in MIGRATIONS[:before]:
            step(db)
        db.execute(f"PRAGMA user_version = {before}")
        db.execute(insert)


async def test_a_new_version_of_a_page_replaces_the_old_in_the_index(
    aiohttp_server: Any, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = await crawled(aiohttp_server, backend, tmp_path)
    assert await search(capsys, db, "ospreys") == []
    update = (
        "UPDATE pages SET title = 'Ospreys', text = 'Ospreys dive feet first.'"
        " WHERE url LIKE '%/owls' RETURNING url"
    )
    if backend.kind == "sqlite":
        await asyncio.to_thread(_write_sqlite, backend.location, update)
    else:
        await pg_rows(backend.location, update)
    assert await search(capsys, db, "ospreys") == ["/owls"]
    assert await search(capsys, db, f'"{OWL_PHRASE}"') == []


async def test_another_tools_rows_follow_the_index_too(
    aiohttp_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The crawl's own saves index their pages themselves (sqlite_writes.WRITER_INDEXES); the
    # triggers keep the index for everyone else: rows inserted, then deleted, by another tool.
    backend = Backend("sqlite", str(tmp_path / "crawl.db"))
    _, db = await crawled(aiohttp_server, backend, tmp_path)
    insert = (
        "INSERT INTO pages (url, host, status, title, text, depth, fetched_at) VALUES"
        f" ('http://{HOST}/kites', '{HOST}', 200, 'Kites', 'Kites hover.', 1, '2026-01-01')"
    )
    await asyncio.to_thread(_write_sqlite, db, insert)
    assert await search(capsys, db, "kites") == ["/kites"]
    await asyncio.to_thread(_write_sqlite, db, "DELETE FROM pages WHERE url LIKE '%/owls'")
    assert await search(capsys, db, f'"{OWL_PHRASE}"') == []
    await asyncio.to_thread(_write_sqlite, db, "DELETE FROM pages WHERE url LIKE '%/kites'")
    assert await search(capsys, db, "kites") == []


def _write_sqlite(path: str, sql: str) -> None:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db, db:
        db.execute(sql).fetchall()
