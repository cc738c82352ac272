"""crawler/storage/search_syntax.py: the search syntax parsed, then run on the real schema of
both backends (SQLite's FTS5 table, PostgreSQL's tsvector index), through the read contract's
`search`, with one table of cases for both. The pages are written through each backend's
`Storage.save`, as a crawl writes them.

The tests are plain functions: the PostgreSQL reader runs its own event loop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncpg
import pytest
from backends import page, save, take
from pgserver import PgServer

from crawler.config import DEFAULT_LEASE
from crawler.errors import UsageError
from crawler.records import Discovered, Outcome
from crawler.storage import Batch, Storage, open_reader
from crawler.storage.postgres import PostgresStore
from crawler.storage.postgres_schema import SEARCH_DOCUMENT
from crawler.storage.search_syntax import QuerySyntaxError, parse, to_fts5, to_tsquery
from crawler.storage.sqlite import SQLiteStore

PAGES = [
    (1, "Email etiquette", "How to write an e-mail that people read. Send mail politely."),
    (2, "Backups with pg_dump", "Run pg_dump nightly and restore with pg_restore."),
    (3, "C++ templates", "Templates in C++, and the value of pi: 3.14."),
    (4, "Crawling the web", "A polite crawler fetches robots.txt from example.org first."),
    (5, "Cats and dogs", "The quick brown fox jumps over the lazy dog."),
    (6, "Mailing lists", "Join the list or read the archive."),
    (7, "Zürich", "Eine Straße in 東京"),
]
SITE = "https://s.test/"

Search = Callable[[str], list[int]]


async def write_pages(opening: AbstractAsyncContextManager[Storage]) -> None:
    """PAGES as a crawl saves them: page n at SITE + n."""
    async with opening as store:
        seeds = [Discovered(f"{SITE}{n}", "s.test", 0, "queued", None, None) for n, *_ in PAGES]
        run = await store.start_run(seeds, 1, DEFAULT_LEASE)
        claims = {h.host: h for h in await store.claim_hosts(10)}
        outcomes = []
        for n, title, text in PAGES:
            q = await take(store, f"{SITE}{n}", claims)
            outcomes.append(Outcome(q, "done", page=page(q, 200, n, title=title, text=text)))
        await save(store, Batch(outcomes))
        await store.end_run(run.run_id, "finished", None)


@pytest.fixture(scope="module")
def pg_pages(pg_server: PgServer) -> Iterator[str]:
    """The URL of a PostgreSQL crawl of PAGES."""
    name = "search_query_pages"
    url = pg_server.create_database(name)
    try:
        asyncio.run(write_pages(PostgresStore.open(url)))
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def search(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Search:
    """`search(query)`: the numbers of the PAGES the query matches, on either backend."""
    if request.param == "sqlite":
        db: str = str(tmp_path_factory.mktemp("search") / "crawl.db")
        asyncio.run(write_pages(SQLiteStore.open(Path(db))))
    else:
        db = request.getfixturevalue("pg_pages")

    def in_database(query: str) -> list[int]:
        with open_reader(db, require=("pages",)) as reader:
            found = [url for url, _, _ in reader.search(query, len(PAGES))]
        return sorted(int(url.removeprefix(SITE)) for url in found)

    return in_database


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
def test_matches(search: Search, query: str, expected: list[int]) -> None:
    assert search(query) == expected


ODD = [
    'don"t', '"a""b"', 'a"b c"d', '"a"b"c"', "*", "a *", "**", '"*"', "a**", "😀",
    "naïve 😀 emoji", "NEAR(a b)", "NEAR/2", "NEAR", "^a", "a^b", "a:b", ":", "title:", "-x",
    "- x", "a + b", "a - b", "{a b}", "[a]", "'quoted'", "it's", "back\\slash", "$1", "%_",
    "'; DROP TABLE pages; --", "a&b|c!d", "<->", "'a':*", "a\x00b", "\udcff", "\u0301", "ﬁle",
    "AND*", "x OR y*", '"NOT"', "(a)(b)", "a (b OR c)",
]  # fmt: skip


@pytest.mark.parametrize("query", ODD)
def test_odd_queries_run_or_are_refused(search: Search, query: str) -> None:
    search_or_refuse(search, query)


def test_random_queries_run_or_are_refused(search: Search) -> None:
    pieces = ["a", "fox", "AND", "OR", "NOT", "(", ")", '"', "*", "-", ":", "^", "+", ".", "_"]
    pieces += ["é", "😀", "'", "\\", "NEAR", "\x00", "\udcff", " ", " ", " "]
    rng = random.Random(42)
    for _ in range(200):
        search_or_refuse(search, "".join(rng.choices(pieces, k=rng.randint(1, 12))))


def search_or_refuse(search: Search, query: str) -> None:
    """The engine runs the query, or parse refuses it: nothing else may go wrong."""
    try:
        parse(query)
    except QuerySyntaxError:
        return
    search(query)


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
def test_postgres_ignores_stop_words(search: Search, query: str, expected: list[int]) -> None:
    """SQLite has no stop words; PostgreSQL drops them, and a query of only those finds none."""
    assert search(query) == expected


async def test_tsquery_parameters_follow_the_callers(pg_pages: str) -> None:
    expression, params = to_tsquery(parse("fox OR templates"), first_param=2)
    assert "$1" not in expression
    assert params == ["fox", "templates"]
    conn = await asyncpg.connect(pg_pages)
    try:
        sql = f"SELECT url FROM pages WHERE url <> $1 AND {SEARCH_DOCUMENT} @@ {expression}"
        assert [row["url"] for row in await conn.fetch(sql, f"{SITE}5", *params)] == [f"{SITE}3"]
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
