"""The query language of `crawler search DB TERMS`: one forgiving syntax, two backends.

The syntax is FTS5's, made forgiving:

- bare words, `"quoted phrases"` (`""` inside quotes is a literal quote), prefixes `word*` and
  `"some phrase"*` (the prefix applies to the last word); adjacent items are ANDed;
- `AND`, `OR`, `NOT` in uppercase (lowercase and/or/not are plain words), parentheses, and the
  precedence NOT > AND (explicit or implicit) > OR. NOT is binary as in FTS5: `a NOT b`, and
  `a AND NOT b` means the same; a NOT without a term on each side is an error;
- a bare token with punctuation (`e-mail`, `pg_dump`, `C++`, `3.14`, `example.org`) is the
  phrase of its words, one without word characters (`-`, `++`, `*`) is dropped. So `-x` is the
  word x, no negation; column filters are not supported: `title:x` is the phrase "title x";
  FTS5's `NEAR`, `^` and `+` are plain text too.

`parse` builds a small tree; `to_fts5` writes it as an FTS5 MATCH string in which every phrase
is double-quoted, with explicit operators and parentheses (FTS5 itself binds an implicit AND
tighter than NOT: `a NOT b c` would mean `a NOT (b c)` there). `to_tsquery` writes it as a
PostgreSQL expression of type tsquery whose words are all parameters:

- a phrase is `phraseto_tsquery(config, $n)`; when typed with punctuation it is ORed with the
  text as typed, because PostgreSQL's parser keeps `example.org` or `3.14` as one lexeme;
- a prefix is `to_tsquery(config, $n)` on a tsquery text built here from word characters only
  (`'pg' <-> 'du':*`), so the user never writes tsquery syntax;
- stop words: PostgreSQL drops them (with a NOTICE) and ANDs or ORs the rest, so `the fox`
  searches fox and a query of stop words only matches nothing. A NOT whose left side is only
  stop words matches nothing too, rather than every page lacking its right side. SQLite's
  tokenizer has no stop words: there `the` is a word like any other.

Error handling: a malformed query raises QuerySyntaxError, a UsageError (exit code 2) and a
ValueError, whose message is one short line (`unbalanced quote in query`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from crawler.errors import UsageError

MAX_DEPTH = 32  # nested parentheses; FTS5 refuses trees deeper than 256 anyway
_TOKEN = re.compile(r'\s+|[()]|"((?:[^"]|"")*)"(\*?)|"|[^\s()]+')
_OPERATORS = ("AND", "OR", "NOT")
_UNSENDABLE = re.compile(r"[\x00\ud800-\udfff]")
_CONFIG = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")


class QuerySyntaxError(UsageError, ValueError):
    """A malformed search query; the message is one short line for the user."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words in this order; with `prefix`, the last word is a prefix. `text` is the phrase as
    typed, punctuation included."""

    words: tuple[str, ...]
    prefix: bool = False
    text: str = ""


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """`keep NOT drop[0] NOT drop[1] …`: what matches keep and none of drop."""

    keep: Node
    drop: tuple[Node, ...]


Node = Phrase | And | Or | Not
_Token = Phrase | str  # a phrase, an operator, or a parenthesis


def parse(query: str) -> Node:
    """The tree of a search query; raises QuerySyntaxError if it is malformed."""
    # NUL and lone surrogates (undecodable argv bytes) can't reach PostgreSQL as text.
    query = _UNSENDABLE.sub(" ", unicodedata.normalize("NFC", query))
    tokens = _tokenize(query)
    if not tokens:
        raise QuerySyntaxError("empty query")
    return _Parser(tokens).parse()


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(query):
        token = match.group()
        if token.isspace():
            continue
        if token in ("(", ")", *_OPERATORS):
            tokens.append(token)
        elif token == '"':
            raise QuerySyntaxError("unbalanced quote in query")
        elif token.startswith('"'):
            text = match.group(1).replace('""', '"')
            _add_phrase(tokens, text, prefix=bool(match.group(2)))
        else:
            _add_phrase(tokens, token.rstrip("*"), prefix=token.endswith("*"))
    return tokens


def _add_phrase(tokens: list[_Token], text: str, *, prefix: bool) -> None:
    words = tuple("".join(c if _is_word_char(c) else " " for c in text).split())
    if words:  # a token without word characters is dropped
        tokens.append(Phrase(words, prefix, text))


def _is_word_char(char: str) -> bool:
    # Letters, numbers, marks (each engine's tokenizer decides about those), private use.
    category = unicodedata.category(char)
    return category[0] in "LNM" or category == "Co"


class _Parser:
    """Recursive descent: or := and (OR and)*; and := not ([AND] not)*;
    not := primary ([AND] NOT primary)*; primary := phrase | ( or )."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self._or()
        if self.pos == len(self.tokens):
            return node
        raise QuerySyntaxError("unbalanced parenthesis in query")  # only a ")" stops _or early

    def _peek(self, ahead: int = 0) -> _Token | None:
        pos = self.pos + ahead
        return self.tokens[pos] if pos < len(self.tokens) else None

    def _accept(self, operator: str) -> bool:
        if self._peek() == operator:
            self.pos += 1
            return True
        return False

    def _or(self) -> Node:
        items = [self._and(None)]
        while self._accept("OR"):
            items.append(self._and("OR"))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self, after: str | None) -> Node:
        items = [self._not(after)]
        while True:
            if self._accept("AND"):
                items.append(self._not("AND"))
            elif isinstance(self._peek(), Phrase) or self._peek() == "(":
                items.append(self._not(None))
            else:
                return items[0] if len(items) == 1 else And(tuple(items))

    def _not(self, after: str | None) -> Node:
        keep = self._primary(after)
        drop: list[Node] = []
        while self._peek() == "NOT" or (self._peek() == "AND" and self._peek(1) == "NOT"):
            self.pos += 1 if self._peek() == "NOT" else 2
            drop.append(self._primary("NOT"))
        return Not(keep, tuple(drop)) if drop else keep

    def _primary(self, after: str | None) -> Node:
        token = self._peek()
        if isinstance(token, Phrase):
            self.pos += 1
            return token
        if token != "(":
            raise QuerySyntaxError(self._missing_term(after, token))
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError("too many nested parentheses in query")
        self.pos += 1
        node = self._or()
        if not self._accept(")"):
            raise QuerySyntaxError("unbalanced parenthesis in query")
        self.depth -= 1
        return node

    def _missing_term(self, after: str | None, token: _Token | None) -> str:
        """The message for a term expected after `after` (None: at the start of a group)."""
        operator = after or (token if token in _OPERATORS else None)
        if operator:
            return f"{operator} needs a term on each side"
        if token == ")" and self.depth:
            return "empty parentheses in query"
        return "unbalanced parenthesis in query"  # a ")" at the top, or "(" at the end


def to_fts5(node: Node) -> str:
    """An FTS5 MATCH string: phrases double-quoted, operators and parentheses explicit."""
    match node:
        case Phrase(words, prefix):
            return '"' + " ".join(words) + '"' + ("*" if prefix else "")
        case And(items):
            return " AND ".join(_fts5_operand(item) for item in items)
        case Or(items):
            return " OR ".join(_fts5_operand(item) for item in items)
        case Not(keep, drop):
            return f"{_fts5_operand(keep)} NOT {_fts5_operand(_any(drop))}"


def _fts5_operand(node: Node) -> str:
    return to_fts5(node) if isinstance(node, Phrase) else f"({to_fts5(node)})"


def _any(nodes: tuple[Node, ...]) -> Node:
    return nodes[0] if len(nodes) == 1 else Or(nodes)


def to_tsquery(node: Node, config: str = "english", first_param: int = 1) -> tuple[str, list[str]]:
    """A PostgreSQL expression of type tsquery and its parameters, numbered from
    `$first_param`: match it with `document @@ (expression)`.

    `config` is a text search configuration's name (written into the SQL, so it must look
    like one: ValueError otherwise).
    """
    if not _CONFIG.fullmatch(config):
        raise ValueError(f"not a text search configuration name: {config!r}")
    builder = _TsQuery(f"'{config}'", first_param)
    return builder.expression(node), builder.params


class _TsQuery:
    def __init__(self, config: str, first_param: int) -> None:
        self.config = config
        self.first_param = first_param
        self.params: list[str] = []

    def _param(self, value: str) -> str:
        self.params.append(value)
        return f"${self.first_param + len(self.params) - 1}"

    def expression(self, node: Node) -> str:
        match node:
            case Phrase():
                return self._phrase(node)
            case And(items):
                return "(" + " && ".join(self.expression(item) for item in items) + ")"
            case Or(items):
                return "(" + " || ".join(self.expression(item) for item in items) + ")"
            case Not(keep, drop):
                kept, dropped = self.expression(keep), self.expression(_any(drop))
                # An empty (stop words only) left side matches nothing, not `!!drop`: every page.
                return (
                    f"(SELECT CASE WHEN numnode(q) = 0 THEN q ELSE q && !!{dropped} END"
                    f" FROM (SELECT {kept} AS q) AS keep)"
                )

    def _phrase(self, phrase: Phrase) -> str:
        if phrase.prefix:
            # Words hold no quote or backslash, so single quotes make each one a lexeme.
            lexemes = [f"'{word}'" for word in phrase.words]
            lexemes[-1] += ":*"
            return f"to_tsquery({self.config}, {self._param(' <-> '.join(lexemes))})"
        words = " ".join(phrase.words)
        sql = f"phraseto_tsquery({self.config}, {self._param(words)})"
        typed = " ".join(phrase.text.split())
        if typed in ("", words):
            return sql
        return f"({sql} || phraseto_tsquery({self.config}, {self._param(typed)}))"
