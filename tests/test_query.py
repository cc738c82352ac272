from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from crawler.commands.query import FORMATS, run_query
from crawler.errors import CrawlerError, StoreError, UsageError
from crawler.storage import sqlite_reads
from crawler.storage.sqlite import prepare
from crawler.storage.sqlite_reads import open_read_only

LONG_TITLE = "T" * 100
BODY = b"<html>caf\xc3\xa9 \xff</html>"  # valid UTF-8 then one invalid byte

PAGES = [
    # url, host, status, title, body, bytes, error
    ("https://a.test/", "a.test", 200, "Home \u00e9", BODY, len(BODY), None),
    ("https://a.test/long", "a.test", 200, LONG_TITLE, None, 0, None),
    ("https://b.test/x", "b.test", None, None, None, 0, "timeout"),
]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "crawl.db"
    prepare(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO pages (url, host, status, title, body, bytes, depth, fetched_at, error)"
            " VALUES (?, ?, ?, ?, ?, ?, 0, '2026-11-25T00:34:35.123Z', ?)",
            PAGES,
        )
        db.executemany(
            "INSERT INTO urls (url, host, depth, state) VALUES (?, ?, 0, 'done')",
            [(p[0], p[1]) for p in PAGES],
        )
    return path


def query(path: Path, sql: str, fmt: str) -> tuple[int, str]:
    out = io.StringIO()
    count = run_query(path, sql, fmt, out)
    return count, out.getvalue()


SELECT = "SELECT url, status, title, bytes, error FROM pages ORDER BY id"
EXPECTED = [
    {"url": p[0], "status": p[2], "title": p[3], "bytes": p[5], "error": p[6]} for p in PAGES
]


def test_json_parses_back(db_path: Path) -> None:
    count, text = query(db_path, SELECT, "json")
    assert count == 3
    assert json.loads(text) == EXPECTED


def test_jsonl_parses_back_line_by_line(db_path: Path) -> None:
    count, text = query(db_path, SELECT, "jsonl")
    lines = text.splitlines()
    assert count == len(lines) == 3
    assert [json.loads(line) for line in lines] == EXPECTED


def test_csv_parses_back(db_path: Path) -> None:
    count, text = query(db_path, SELECT, "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert count == 3
    assert rows[0] == ["url", "status", "title", "bytes", "error"]
    expected = [[("" if v is None else str(v)) for v in row.values()] for row in EXPECTED]
    assert rows[1:] == expected


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_blob_is_written_as_utf8_text(db_path: Path, fmt: str) -> None:
    _, text = query(db_path, "SELECT body FROM pages WHERE body IS NOT NULL", fmt)
    assert "<html>caf\u00e9 \ufffd</html>" in text


def test_json_keeps_repeated_column_names(db_path: Path) -> None:
    sql = "SELECT p.url, u.url FROM pages AS p JOIN urls AS u USING (url) ORDER BY p.id LIMIT 1"
    _, text = query(db_path, sql, "json")
    assert json.loads(text) == [{"url": PAGES[0][0], "url:2": PAGES[0][0]}]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        pytest.param("json", "[]\n", id="json"),
        pytest.param("jsonl", "", id="jsonl"),
        pytest.param("csv", "url\n", id="csv"),
    ],
)
def test_empty_result(db_path: Path, fmt: str, expected: str) -> None:
    assert query(db_path, "SELECT url FROM pages WHERE 0", fmt) == (0, expected)


def test_table_format(db_path: Path) -> None:
    count, text = query(db_path, "SELECT url, status, title, body FROM pages ORDER BY id", "table")
    lines = text.splitlines()
    assert count == 3
    assert lines[0].split(" | ")[:3] == ["url                ", "status", "title".ljust(60)]
    assert set(lines[1]) == {"-", "+"}
    assert lines[-1] == "(3 rows)"
    assert f"<{len(BODY)} bytes>" in lines[2]
    assert "T" * 59 + "…" in lines[3]
    assert LONG_TITLE not in text
    bars = [i for i, c in enumerate(lines[0]) if c == "|"]
    assert bars == [i for i, c in enumerate(lines[1]) if c == "+"]  # header and separator align
    assert all([i for i, c in enumerate(line) if c == "|"] == bars for line in lines[2:5])


def test_table_escapes_newlines(db_path: Path) -> None:
    _, text = query(db_path, "SELECT 'a' || char(10) || 'b' AS x", "table")
    assert text.splitlines()[2] == "a\\nb"


def test_statement_without_columns_writes_nothing(db_path: Path) -> None:
    assert query(db_path, "", "json") == (0, "")


def test_unknown_format(db_path: Path) -> None:
    with pytest.raises(UsageError, match="xml"):
        query(db_path, SELECT, "xml")
    assert "table" in FORMATS


def snapshot(path: Path) -> tuple[object, ...]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [n for (n,) in db.execute("SELECT name FROM sqlite_master ORDER BY name")]
        counts = [
            db.execute(f"SELECT count(*) FROM {n}").fetchone()
            for n in tables
            if not n.startswith("sqlite_") and "_" not in n  # tables, not indexes
        ]
        version = db.execute("PRAGMA user_version").fetchone()
        mode = db.execute("PRAGMA journal_mode").fetchone()
        rows = db.execute("SELECT url, status, title FROM pages ORDER BY id").fetchall()
    return tables, counts, version, mode, rows


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("INSERT INTO runs (started_at, seeds) VALUES ('now', '')", id="insert"),
        pytest.param("UPDATE pages SET status = 500", id="update"),
        pytest.param("DELETE FROM pages", id="delete"),
        pytest.param("DROP TABLE pages", id="drop-table"),
        pytest.param("CREATE TABLE t (x)", id="create-table"),
        pytest.param("CREATE INDEX pages_title ON pages (title)", id="create-index"),
        pytest.param("PRAGMA user_version = 5", id="user-version"),
        pytest.param("PRAGMA journal_mode = DELETE", id="journal-mode"),
        pytest.param("PRAGMA query_only = OFF", id="query-only-off"),
        pytest.param("ATTACH '{other}' AS other", id="attach"),
        pytest.param("VACUUM INTO '{other}'", id="vacuum-into"),
        pytest.param("VACUUM", id="vacuum"),
        pytest.param("REINDEX", id="reindex"),
    ],
)
def test_write_is_refused_and_changes_nothing(db_path: Path, sql: str) -> None:
    other = db_path.parent / "other.db"
    before = snapshot(db_path)
    main_bytes = db_path.read_bytes()
    with pytest.raises(StoreError) as info:
        query(db_path, sql.format(other=other), "table")
    assert info.value.exit_code == 2
    message = str(info.value)
    assert message.startswith("query refused: the database is opened read-only (")
    assert "\n" not in message
    assert not other.exists()
    assert db_path.read_bytes() == main_bytes
    assert snapshot(db_path) == before


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param("SELEC 1", 'query failed: near "SELEC": syntax error', id="syntax"),
        pytest.param("SELECT * FROM x", "query failed: no such table: x", id="no-table"),
        pytest.param("SELECT nope FROM pages", "query failed: no such column: nope", id="column"),
        pytest.param(
            "SELECT 1; DELETE FROM pages",
            "query failed: You can only execute one statement at a time.",
            id="two-statements",
        ),
    ],
)
def test_bad_sql(db_path: Path, sql: str, expected: str) -> None:
    before = snapshot(db_path)
    with pytest.raises(StoreError) as info:
        query(db_path, sql, "csv")
    assert info.value.exit_code == 2
    assert str(info.value) == expected
    assert snapshot(db_path) == before


def test_trailing_semicolon_and_comment_are_fine(db_path: Path) -> None:
    assert query(db_path, "SELECT count(*) AS n FROM pages; -- all", "jsonl") == (1, '{"n": 3}\n')


def test_reads_while_a_writer_holds_the_database(db_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM pages")  # not committed: readers see the old rows
        assert query(db_path, "SELECT count(*) AS n FROM pages", "jsonl")[1] == '{"n": 3}\n'
        writer.execute("ROLLBACK")


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        pytest.param("missing.db", None, "no database at", id="missing"),
        pytest.param("adir", "dir", "is a directory", id="directory"),
        pytest.param("notes.txt", "text", "as an SQLite database", id="text-file"),
    ],
)
def test_not_a_database(tmp_path: Path, name: str, make: str | None, message: str) -> None:
    path = tmp_path / name
    if make == "dir":
        path.mkdir()
    elif make == "text":
        path.write_text("these are notes, not a database\n" * 20)
    # A missing file or a folder is a UsageError; a file sqlite cannot read, a StoreError:
    # either way one line naming the path, and exit code 2.
    with pytest.raises(CrawlerError, match=message) as info:
        open_read_only(path)
    assert info.value.exit_code == 2
    assert str(path) in str(info.value)
    with pytest.raises(CrawlerError) as again:
        query(path, "SELECT 1", "csv")
    assert again.value.exit_code == 2


def test_open_read_only_is_read_only(db_path: Path) -> None:
    with contextlib.closing(open_read_only(db_path)) as db:
        assert db.execute("PRAGMA query_only").fetchone() == (1,)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("DELETE FROM pages")


def test_the_guard_watches_the_users_sql_only(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sqlite3 drops an exception raised in its Python callbacks (a Ctrl-C landing in the
    # authorizer became "not authorized", exit 1, for an export stopped mid-file): our own
    # reads, a statement per batch, run with no callback at all.
    calls: list[int] = []
    check = sqlite_reads.Guard.__call__

    def counted(guard: sqlite_reads.Guard, action: int, *args: str | None) -> int:
        calls.append(action)
        return check(guard, action, *args)

    monkeypatch.setattr(sqlite_reads.Guard, "__call__", counted)
    with sqlite_reads.SQLiteReader.open(db_path) as reader:
        del calls[:]  # opening reads through it (open_read_only's guarded connection)
        assert len(list(reader.pages(("url", "body"), batch=1))) == 3
        assert reader.counts().pages == 3
        assert calls == []
        found = reader.user_sql("SELECT url FROM pages")
        assert found is not None
        assert calls  # the user's SQL is prepared under the guard
        del calls[:]
        assert len(list(reader.pages(("url",), batch=2))) == 3
        assert calls == []
