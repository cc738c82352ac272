"""crawler/search_query.py: the search syntax parsed, then run on real engines (an FTS5 table in
SQLite, a tsvector document in PostgreSQL) with one table of cases for both."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing

import asyncpg
import pytest

from crawler.errors import UsageError
from crawler.storage.search_syntax import QuerySyntaxError, parse, to_fts5, to_tsquery

PAGES = [
    (1, "Email etiquette", "How to write an e-mail that people read. Send mail politely."),
    (2, "Backups with pg_dump", "Run pg_dump nightly and restore with pg_restore."),
    (3, "C++ templates", "Templates in C++, and the value of pi: 3.14."),
    (4, "Crawling the web", "A polite crawler fetches robots.txt from example.org first."),
    (5, "Cats and dogs", "The quick brown fox jumps over the lazy dog."),
    (6, "Mailing lists", "Join the list or read the archive."),
    (7, "Zürich", "Eine Straße in 東京"),
]
SQLITE_SCHEMA = """
CREATE TABLE pages(id INTEGER PRIMARY KEY, title TEXT, text TEXT);
CREATE VIRTUAL TABLE pages_fts USING fts5(title, text, content="pages", content_rowid="id",
    tokenize="porter unicode61 remove_diacritics 2");
"""
DOCUMENT = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A')"
    " || setweight(to_tsvector('english', coalesce(text, '')), 'B')"
)

Search = Callable[[str], Awaitable[list[int]]]


@pytest.fixture(params=["sqlite", "postgres"])
async def search(request: pytest.FixtureRequest) -> AsyncIterator[Search]:
    """`await search(query)`: the ids of the PAGES the query matches, on either engine."""
    if request.param == "sqlite":
        with closing(sqlite3.connect(":memory:")) as db:
            db.executescript(SQLITE_SCHEMA)
            db.executemany("INSERT INTO pages VALUES (?, ?, ?)", PAGES)
            db.execute("INSERT INTO pages_fts(pages_fts) VALUES('rebuild')")

            async def in_sqlite(query: str) -> list[int]:
                sql = "SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? ORDER BY rowid"
                return [row[0] for row in db.execute(sql, (to_fts5(parse(query)),))]

            yield in_sqlite
        return
    conn = await asyncpg.connect(request.getfixturevalue("pg_url"))
    try:
        await conn.execute("CREATE TABLE pages (id bigint PRIMARY KEY, title text, text text)")
        await conn.executemany("INSERT INTO pages VALUES ($1, $2, $3)", PAGES)

        async def in_postgres(query: str) -> list[int]:
            expression, params = to_tsquery(parse(query))
            sql = f"SELECT id FROM pages WHERE {DOCUMENT} @@ {expression} ORDER BY id"
            return [row["id"] for row in await conn.fetch(sql, *params)]

        yield in_postgres
    finally:
        await conn.close()


MATCHES = [
    pytest.param("fox", [5], id="word"),
    pytest.param("FOX", [5], id="case-insensitive"),
    pytest.param("mail", [1, 6], id="stemmed"),
    pytest.param('"quick brown fox"', [5], id="phrase"),
    pytest.param('"brown quick"', [], id="phrase-order"),
    pytest.param("fox dog", [5], id="implicit-and"),
    pytest.param("fox AND templates", [], id="and"),
    pytest.param("fox OR templates", [3, 5], id="or"),
    pytest.param("mail NOT etiquette", [6], id="not"),
    pytest.param("mail AND NOT etiquette", [6], id="and-not"),
    pytest.param("mail NOT etiquette NOT archive", [], id="not-chain"),
    pytest.param("fox OR templates c++", [3, 5], id="and-before-or"),
    pytest.param("(fox OR templates) c++", [3], id="parentheses"),
    pytest.param("templates NOT fox OR lazy", [3, 5], id="not-before-or"),
    pytest.param("templates NOT (fox OR lazy)", [3], id="not-group"),
    pytest.param("mail NOT etiquette archive", [6], id="not-before-implicit-and"),
    pytest.param("crawl*", [4], id="prefix"),
    pytest.param("temp* pi", [3], id="prefix-and-word"),
    pytest.param('"polite craw"*', [4], id="phrase-prefix"),
    pytest.param("e-mail", [1], id="hyphen"),
    pytest.param("pg_dump", [2], id="underscore"),
    pytest.param("C++", [3], id="plus-signs"),
    pytest.param("3.14", [3], id="decimal"),
    pytest.param('"pi: 3.14"', [3], id="punctuation-in-phrase"),
    pytest.param("example.org", [4], id="host"),
    pytest.param("robots.txt", [4], id="file-name"),
    pytest.param("fox - ++ *", [5], id="wordless-tokens-dropped"),
    pytest.param("list or read", [6], id="lowercase-or-is-a-word"),
    pytest.param("fox or templates", [], id="lowercase-or-not-an-operator"),
    pytest.param("title:templates", [], id="column-filter-is-a-phrase"),
    pytest.param("Zürich", [7], id="unicode"),
    pytest.param("東京", [7], id="cjk"),
]


@pytest.mark.parametrize(("query", "expected"), MATCHES)
async def test_matches(search: Search, query: str, expected: list[int]) -> None:
    assert await search(query) == expected


ODD = [
    'don"t', '"a""b"', 'a"b c"d', '"a"b"c"', "*", "a *", "**", '"*"', "a**", "😀",
    "naïve 😀 emoji", "NEAR(a b)", "NEAR/2", "NEAR", "^a", "a^b", "a:b", ":", "title:", "-x",
    "- x", "a + b", "a - b", "{a b}", "[a]", "'quoted'", "it's", "back\\slash", "$1", "%_",
    "'; DROP TABLE pages; --", "a&b|c!d", "<->", "'a':*", "a\x00b", "\udcff", "\u0301", "ﬁle",
    "AND*", "x OR y*", '"NOT"', "(a)(b)", "a (b OR c)",
]  # fmt: skip


@pytest.mark.parametrize("query", ODD)
async def test_odd_queries_run_or_are_refused(search: Search, query: str) -> None:
    await search_or_refuse(search, query)


async def test_random_queries_run_or_are_refused(search: Search) -> None:
    pieces = ["a", "fox", "AND", "OR", "NOT", "(", ")", '"', "*", "-", ":", "^", "+", ".", "_"]
    pieces += ["é", "😀", "'", "\\", "NEAR", "\x00", "\udcff", " ", " ", " "]
    rng = random.Random(42)
    for _ in range(200):
        await search_or_refuse(search, "".join(rng.choices(pieces, k=rng.randint(1, 12))))


async def search_or_refuse(search: Search, query: str) -> None:
    """The engine runs the query, or parse refuses it: nothing else may go wrong."""
    try:
        parse(query)
    except QuerySyntaxError:
        return
    await search(query)


STOP_WORDS = [
    pytest.param("the", [], id="only-stop-words"),
    pytest.param("the*", [], id="stop-word-prefix"),
    pytest.param("the fox", [5], id="and-stop-word"),
    pytest.param("the OR fox", [5], id="or-stop-word"),
    pytest.param("fox NOT the", [5], id="not-stop-word"),
    pytest.param("the NOT fox", [], id="stop-word-not"),
    pytest.param("(the NOT fox) OR templates", [3], id="stop-word-not-in-or"),
]


@pytest.mark.parametrize(("query", "expected"), STOP_WORDS)
@pytest.mark.parametrize("search", ["postgres"], indirect=True)
async def test_postgres_ignores_stop_words(search: Search, query: str, expected: list[int]) -> None:
    """SQLite has no stop words; PostgreSQL drops them, and a query of only those finds none."""
    assert await search(query) == expected


async def test_tsquery_parameters_follow_the_callers(pg_url: str) -> None:
    expression, params = to_tsquery(parse("fox OR templates"), first_param=2)
    assert "$1" not in expression
    assert params == ["fox", "templates"]
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("CREATE TABLE pages (id bigint PRIMARY KEY, title text, text text)")
        await conn.executemany("INSERT INTO pages VALUES ($1, $2, $3)", PAGES)
        sql = f"SELECT id FROM pages WHERE id <> $1 AND {DOCUMENT} @@ {expression}"
        assert [row["id"] for row in await conn.fetch(sql, 5, *params)] == [3]
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("query", "match"),
    [
        pytest.param("fox", '"fox"', id="word"),
        pytest.param("a b OR c", '("a" AND "b") OR "c"', id="precedence"),
        pytest.param("a NOT b c", '("a" NOT "b") AND "c"', id="not-binds-tightest"),
        pytest.param("a NOT b NOT c", '"a" NOT ("b" OR "c")', id="not-chain"),
        pytest.param("a AND NOT b", '"a" NOT "b"', id="and-not"),
        pytest.param("a (b OR c)", '"a" AND ("b" OR "c")', id="group"),
        pytest.param('"say ""hi"""', '"say hi"', id="escaped-quote"),
        pytest.param("e-mail* x", '"e mail"* AND "x"', id="punctuation-prefix"),
        pytest.param('"a b"*', '"a b"*', id="phrase-prefix"),
        pytest.param("and or not", '"and" AND "or" AND "not"', id="lowercase-words"),
        pytest.param("title:x", '"title x"', id="column-filter"),
        pytest.param("-x", '"x"', id="minus-is-no-negation"),
        pytest.param("NEAR(a b)", '"NEAR" AND ("a" AND "b")', id="near"),
        pytest.param("^a", '"a"', id="caret"),
        pytest.param('don"t', '"don t"', id="quote-inside-word"),
        pytest.param("a ++ *", '"a"', id="wordless-tokens"),
    ],
)
def test_to_fts5(query: str, match: str) -> None:
    assert to_fts5(parse(query)) == match


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("", "empty query", id="empty"),
        pytest.param(" - ++ ", "empty query", id="no-words"),
        pytest.param('"fox', "unbalanced quote in query", id="open-quote"),
        pytest.param('fox "a""', "unbalanced quote in query", id="escaped-quote-left-open"),
        pytest.param("(fox", "unbalanced parenthesis in query", id="open-parenthesis"),
        pytest.param("fox)", "unbalanced parenthesis in query", id="close-parenthesis"),
        pytest.param("()", "empty parentheses in query", id="empty-parentheses"),
        pytest.param("NOT fox", "NOT needs a term on each side", id="leading-not"),
        pytest.param("fox NOT", "NOT needs a term on each side", id="trailing-not"),
        pytest.param("(fox NOT) dog", "NOT needs a term on each side", id="not-in-group"),
        pytest.param("fox OR NOT dog", "OR needs a term on each side", id="or-not"),
        pytest.param("fox AND", "AND needs a term on each side", id="trailing-and"),
        pytest.param("OR fox", "OR needs a term on each side", id="leading-or"),
        pytest.param("fox AND OR dog", "AND needs a term on each side", id="and-or"),
        pytest.param("fox OR -", "OR needs a term on each side", id="or-dropped-token"),
        pytest.param("(" * 33 + "a" + ")" * 33, "too many nested parentheses in query", id="deep"),
    ],
)
def test_syntax_errors(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_code == 2


def test_tsquery_keeps_user_text_out_of_the_sql() -> None:
    expression, params = to_tsquery(parse("x'; DROP TABLE pages; -- pg_du*"))
    assert "DROP" not in expression
    assert "'x'" not in expression
    assert params[-1] == "'pg' <-> 'du':*"


def test_tsquery_config_must_be_a_name() -> None:
    assert "'simple'" in to_tsquery(parse("fox"), config="simple")[0]
    with pytest.raises(ValueError, match="configuration"):
        to_tsquery(parse("fox"), config="english'; --")
