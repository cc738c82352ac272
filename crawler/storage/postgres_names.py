"""SQLite's names for the result columns of a query run on PostgreSQL, so that `crawler query`
writes the same header and JSON keys on both backends.

The two name a column alike when it is a plain column (`url`, `p.url`) or has a quoted alias,
and differently otherwise: for `count(*)` SQLite says `count(*)` (the expression as written)
and PostgreSQL `count`; for `1 + 2` SQLite says `1 + 2` and PostgreSQL `?column?`; an unquoted
alias keeps its case in SQLite (`AS Total`) and is lower-cased by PostgreSQL (`total`).

`sqlite_names` reads the first SELECT list of the statement with a small lexer (strings, quoted
names, dollar quotes, nested comments, brackets) and, item by item: a plain column keeps
PostgreSQL's name; an alias is taken as written; anything else is named by its text. A bare
alias (`count(*) n`) counts as one only when PostgreSQL named the column by it. Whenever the
list cannot be matched with the columns (`*`, a statement that is no SELECT, a count that
differs) PostgreSQL's names are kept as they are. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple


class Token(NamedTuple):
    kind: str  # word, quoted, string, number, op, open, close, comma, semi, dot
    text: str
    start: int
    end: int
    depth: int  # brackets around it


_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d]\w*(?:\$\w*)*")  # identifiers may hold $ after the first letter
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DOLLAR = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_PARAM = re.compile(r"\$\d+")
_OPERATOR = re.compile(r"[-+*/<>=~!@#%^&|`?:]+")
_STRING_PREFIX = re.compile(r"(?:[eEbBxXnN]|[uU]&)'")
_SINGLE = {"(": "open", "[": "open", ")": "close", "]": "close", ",": "comma", ";": "semi"}
# Keywords that end a SELECT list where they stand outside brackets.
_LIST_ENDS = frozenset({
    "FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR",
    "INTO", "UNION", "INTERSECT", "EXCEPT",
})  # fmt: skip


def tokens(sql: str) -> list[Token]:
    """The tokens of `sql` (PostgreSQL's lexical rules), comments and white space left out."""
    found: list[Token] = []
    depth, i, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if (m := _SPACE.match(sql, i)) is not None:
            i = m.end()
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if sql.startswith("/*", i):
            i = _comment_end(sql, i)
            continue
        kind, end = _token_at(sql, i)
        if kind == "close":
            depth = max(depth - 1, 0)
        found.append(Token(kind, sql[i:end], i, end, depth))
        if kind == "open":
            depth += 1
        i = end if end > i else i + len(c)
    return found


def _token_at(sql: str, i: int) -> tuple[str, int]:
    c = sql[i]
    if c == "'" or (m := _STRING_PREFIX.match(sql, i)) is not None:
        quote = sql.index("'", i)
        escapes = sql[i] in "eE" and quote == i + 1
        return "string", _quoted_end(sql, quote, "'", escapes)
    if c == '"' or sql.startswith(('U&"', 'u&"'), i):
        return "quoted", _quoted_end(sql, sql.index('"', i), '"', False)
    if (m := _DOLLAR.match(sql, i)) is not None:
        close = sql.find(m.group(), m.end())
        return "string", len(sql) if close < 0 else close + len(m.group())
    if (m := _PARAM.match(sql, i)) is not None:
        return "number", m.end()
    if (m := _NUMBER.match(sql, i)) is not None:
        return "number", m.end()
    if (m := _WORD.match(sql, i)) is not None:
        return "word", m.end()
    if c in _SINGLE:
        return _SINGLE[c], i + 1
    if c == ".":
        return "dot", i + 1
    if (m := _OPERATOR.match(sql, i)) is not None:
        # An operator ends where a comment starts (PostgreSQL's rule too).
        text = m.group()
        cut = min((p for p in (text.find("--", 1), text.find("/*", 1)) if p > 0), default=0)
        return "op", i + (cut or len(text))
    return "op", i + 1


def _quoted_end(sql: str, quote: int, mark: str, escapes: bool) -> int:
    """Where the string or name opened by `sql[quote]` ends (doubled marks are kept in)."""
    i = quote + 1
    while i < len(sql):
        if escapes and sql[i] == "\\":
            i += 2
        elif sql[i] == mark:
            if sql.startswith(mark, i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(sql)  # unterminated: the server will say so


def _comment_end(sql: str, i: int) -> int:
    """Where the block comment at `i` ends; PostgreSQL's nest."""
    nesting = 0
    while i < len(sql):
        if sql.startswith("/*", i):
            nesting, i = nesting + 1, i + 2
        elif sql.startswith("*/", i):
            nesting, i = nesting - 1, i + 2
            if nesting == 0:
                return i
        else:
            i += 1
    return len(sql)


def is_empty(sql: str) -> bool:
    """Whether `sql` holds no statement at all (only comments, white space, semicolons)."""
    return all(t.kind == "semi" for t in tokens(sql))


def first_word(sql: str) -> str:
    """The statement's first keyword, upper-cased ("" if it starts with none)."""
    toks = [t for t in tokens(sql) if t.kind != "semi"]
    return toks[0].text.upper() if toks and toks[0].kind == "word" else ""


def sqlite_names(sql: str, names: Sequence[str]) -> list[str]:
    """The names SQLite would give the result columns that PostgreSQL calls `names`."""
    items = _select_items(tokens(sql))
    if items is None or len(items) != len(names):
        return list(names)
    return [_name(sql, item, given) for item, given in zip(items, names, strict=True)]


def _select_items(toks: list[Token]) -> list[list[Token]] | None:
    """The items of the statement's first top-level SELECT list; None if there is none or it
    has a `*` (whose columns cannot be told apart)."""
    start = _select_start(toks)
    if start is None:
        return None
    items: list[list[Token]] = [[]]
    for k in range(start, len(toks)):
        tok = toks[k]
        if tok.depth == 0:
            word = tok.text.upper() if tok.kind == "word" else ""
            if tok.kind == "semi" or (word in _LIST_ENDS and not _distinct_from(toks, k)):
                break
            if tok.kind == "comma":
                items.append([])
                continue
        items[-1].append(tok)
    if any(not item or _is_star(item) for item in items):
        return None
    return items


def _select_start(toks: list[Token]) -> int | None:
    """Where the first top-level SELECT list begins (after DISTINCT [ON (…)] or ALL)."""
    words = [t.text.upper() if t.kind == "word" and t.depth == 0 else "" for t in toks]
    if not toks or words[0] not in ("SELECT", "WITH"):
        return None
    k = words.index("SELECT") if "SELECT" in words else None  # WITH …: the main SELECT
    if k is None:
        return None
    k += 1
    if k < len(toks) and words[k] == "ALL":
        return k + 1
    if k < len(toks) and words[k] == "DISTINCT":
        k += 1
        if k < len(toks) and words[k] == "ON":
            k += 1  # skip the bracketed expressions
            while k < len(toks) and not (toks[k].kind == "close" and toks[k].depth == 0):
                k += 1
            k += 1
    return k


def _distinct_from(toks: list[Token], k: int) -> bool:
    """`IS [NOT] DISTINCT FROM`: a FROM that does not end the list."""
    return k > 0 and toks[k - 1].kind == "word" and toks[k - 1].text.upper() == "DISTINCT"


def _is_star(item: list[Token]) -> bool:
    """`*` or `p.*`."""
    return item[-1].text == "*" and (len(item) == 1 or item[-2].kind == "dot")


def _name(sql: str, item: list[Token], given: str) -> str:
    if _is_column(item, given):
        return given
    last = item[-1]
    if len(item) >= 2 and last.kind in ("word", "quoted"):
        before = item[-2]
        if before.kind == "word" and before.text.upper() == "AS":
            return _unquoted(last)
        if _ends_expression(before) and _folded(last) == given:
            return _unquoted(last)  # a bare alias: PostgreSQL named the column by it
    return sql[item[0].start : last.end]


def _is_column(item: list[Token], given: str) -> bool:
    """`url`, `p.url`, `"p"."url"`: a column reference, which PostgreSQL names by its column
    (`NULL` or `true` have the shape, not the name: PostgreSQL says `?column?`, `bool`)."""
    names, dots = item[0::2], item[1::2]
    return (
        len(item) % 2 == 1
        and all(t.kind in ("word", "quoted") for t in names)
        and all(t.kind == "dot" for t in dots)
        and _folded(item[-1]) == given
    )


def _ends_expression(tok: Token) -> bool:
    return tok.kind in ("word", "quoted", "string", "number", "close")


def _folded(tok: Token) -> str:
    """The name as PostgreSQL reads it: unquoted names are lower-cased."""
    return _unquoted(tok) if tok.kind == "quoted" else tok.text.lower()


def _unquoted(tok: Token) -> str:
    if tok.kind != "quoted":
        return tok.text
    body = tok.text[tok.text.index('"') + 1 : -1]
    return body.replace('""', '"')
