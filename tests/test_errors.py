"""Errors have one boundary: every sqlite3 exception becomes a StoreError in one place, and the
CLI prints one line only when nothing but CrawlerErrors went wrong."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from crawler.cli import _crawler_error
from crawler.errors import ConfigError, CrawlerError, StoreError, UsageError
from crawler.storage.sqlite import translated


def _sqlite_errors() -> list[type[sqlite3.Error]]:
    """Every exception class sqlite3 defines under sqlite3.Error, found by looking."""
    found = {sqlite3.Error}
    for value in vars(sqlite3).values():
        if isinstance(value, type) and issubclass(value, sqlite3.Error):
            found.add(value)
    return sorted(found, key=lambda cls: cls.__name__)


def test_sqlite_defines_the_classes_we_expect() -> None:
    names = {cls.__name__ for cls in _sqlite_errors()}
    assert {"OperationalError", "IntegrityError", "DatabaseError", "ProgrammingError"} <= names
    assert len(names) >= 9  # Error, Interface, Database and its six subclasses


@pytest.mark.parametrize("cls", _sqlite_errors(), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("exit_code", [1, 2])
def test_every_sqlite_error_becomes_one_store_error_line(
    cls: type[sqlite3.Error], exit_code: int
) -> None:
    with pytest.raises(StoreError) as caught, translated("reading x", exit_code=exit_code):
        raise cls("something\nwent   wrong")
    assert str(caught.value) == "reading x: something went wrong"
    assert caught.value.exit_code == exit_code
    assert isinstance(caught.value.__cause__, cls)


def test_a_real_sqlite_failure_is_translated() -> None:
    db = sqlite3.connect(":memory:")
    with pytest.raises(StoreError) as caught, translated("querying"):
        db.execute("SELECT * FROM nowhere")
    db.close()
    assert str(caught.value) == "querying: no such table: nowhere"


def test_explain_words_the_users_line() -> None:
    with (
        pytest.raises(StoreError, match=r"^bad: no such column$"),
        translated("ignored", exit_code=2, explain=lambda message: f"bad: {message}"),
    ):
        raise sqlite3.OperationalError("no such column")


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), translated("x"):
        raise KeyError("not ours to translate")


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        pytest.param(ConfigError("bad key"), "bad key", id="plain"),
        pytest.param(ExceptionGroup("g", [StoreError("disk full")]), "disk full", id="group"),
        pytest.param(
            BaseExceptionGroup("g", [asyncio.CancelledError(), UsageError("u")]),
            "u",
            id="beside-cancellations",
        ),
        pytest.param(
            ExceptionGroup("g", [ExceptionGroup("inner", [StoreError("deep")])]),
            "deep",
            id="nested",
        ),
        pytest.param(ExceptionGroup("g", [StoreError("s"), RuntimeError("bug")]), None, id="bug"),
        pytest.param(
            ExceptionGroup("g", [ExceptionGroup("i", [StoreError("s"), KeyError("k")])]),
            None,
            id="nested-bug",
        ),
        pytest.param(RuntimeError("bug"), None, id="bare-bug"),
    ],
)
def test_the_cli_hides_no_unexpected_error(raised: BaseException, shown: str | None) -> None:
    error = _crawler_error(raised)
    assert (str(error) if error is not None else None) == shown
    assert error is None or isinstance(error, CrawlerError)
