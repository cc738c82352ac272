"""robots.txt rule matching (RFC 9309 2.2.2, 2.2.3), compiled once so a check costs the same
whatever the file's size.

A rule's pattern matches a URL's path and `?query` from its start; `*` stands for any sequence,
a final `$` anchors the end. The matching rule with the longest pattern (in octets, as
normalized below) wins; on a tie Allow wins; no match means allowed. Each rule is kept as one
integer score, `2 * length + allow`, so "the best match" is simply the highest score.

Both sides are compared in one percent-encoded form (`normalize`): escapes of unreserved
characters decoded, hex upper-cased, non-ASCII and other characters a URL cannot hold literally
encoded as UTF-8, `*` and `$` of a URL encoded (RFC 9309 2.2.3: `%2A` in a pattern matches a
literal `*`). The crawler's URLs are already in that form save for `*` and `$` (urls.py), so
most checks skip it.

Where the rules live, so that a check looks at a handful of them:
- literal patterns (no `*`, no final `$`): a dict by pattern, probed only at the lengths that
  occur among them, longest first; the first hit is the best literal match;
- `$`-anchored literals: a dict probed once with the whole target;
- wildcard patterns: matched with `str.find` (leftmost placement of each piece, which is exact
  for `*`-only patterns and never backtracks), filed either by their literal head (the text
  before the first `*`, probed like the literals) or, when that head is short, by a three-
  character slice of one of their pieces, found among the target's own slices by one set
  intersection. Each bin is sorted best first, so the first match in a bin is its best and a
  bin whose best cannot beat the match in hand is skipped.
A regular expression per pattern or one alternation per bin was measured and is slower: `re`
tries alternatives one by one, about 0.5 us each.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Escapes decoded, as yarl decodes them (so crawler/urls.py's URLs are already in this form);
# `*` and `$` never: `%2A` and `%24` are how a pattern names them literally (RFC 9309 2.2.3).
_PATH_DECODED = _UNRESERVED | frozenset(":@!&'(),;=")
_QUERY_DECODED = _UNRESERVED | frozenset("?!'(),@:/")
# Characters a normalized target holds literally; anything else (`%`, `*`, `$`, non-ASCII, ...)
# sends it through _normalize.
_SAFE = r"A-Za-z0-9\-._~:@!&'(),;=+/?"
_TARGET_TODO = re.compile(f"[^{_SAFE}]")
_TARGET_FIX = re.compile(f"%([0-9A-Fa-f]{{2}})|[^{_SAFE}]")
# In a pattern `*` is the wildcard and stays; a final `$` is taken off before.
_PATTERN_TODO = re.compile(f"[^{_SAFE}*]")
_PATTERN_FIX = re.compile(f"%([0-9A-Fa-f]{{2}})|[^{_SAFE}*]")
_AUTHORITY_END = re.compile(r"[/?#]")
_GRAM = 3  # length of the piece slices wildcard patterns are filed by


def _fixer(decoded: frozenset[str]) -> Callable[[re.Match[str]], str]:
    def fix(match: re.Match[str]) -> str:
        hex_pair = match.group(1)
        if hex_pair is not None:
            char = chr(int(hex_pair, 16))
            return char if char in decoded else "%" + hex_pair.upper()
        return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "replace"))

    return fix


_FIX_PATH = _fixer(_PATH_DECODED)
_FIX_QUERY = _fixer(_QUERY_DECODED)


def _normalize(text: str, fixer: re.Pattern[str]) -> str:
    path, mark, query = text.partition("?")
    return fixer.sub(_FIX_PATH, path) + mark + fixer.sub(_FIX_QUERY, query)


def normalize_pattern(value: str) -> tuple[str, bool]:
    """A rule's value in the compared form, and whether it ends with the `$` anchor."""
    anchored = value.endswith("$")
    if anchored:
        value = value[:-1]
    if _PATTERN_TODO.search(value):
        value = _normalize(value, _PATTERN_FIX)
    return value, anchored


def target_of(url: str) -> str:
    """The part of a URL that rules match (path and `?query`, path `/` if empty), normalized.
    A string without `://` is taken as that part already."""
    scheme_end = url.find("://")
    if scheme_end >= 0:
        end = _AUTHORITY_END.search(url, scheme_end + 3)
        url = url[end.start() :] if end else ""
    fragment = url.find("#")
    if fragment >= 0:
        url = url[:fragment]
    if not url.startswith("/"):
        url = "/" + url
    if _TARGET_TODO.search(url):
        url = _normalize(url, _TARGET_FIX)
    return url


class _Glob:
    """A pattern with `*`: head * piece * ... * tail, `$`-anchored or not."""

    __slots__ = ("anchored", "head", "middle", "score", "tail")

    def __init__(self, score: int, body: str, anchored: bool) -> None:
        parts = body.split("*")
        self.score = score
        self.head = parts[0]
        self.middle = tuple(part for part in parts[1:-1] if part)
        self.tail = parts[-1]
        self.anchored = anchored

    def pieces(self) -> list[str]:
        return [*self.middle, self.tail]

    def match(self, target: str) -> bool:
        if not target.startswith(self.head):
            return False
        at = len(self.head)
        for piece in self.middle:  # leftmost placement leaves the most room to what follows
            found = target.find(piece, at)
            if found < 0:
                return False
            at = found + len(piece)
        if self.anchored:
            return len(target) - len(self.tail) >= at and target.endswith(self.tail)
        return target.find(self.tail, at) >= 0


def _best_in(bins: dict[str, list[_Glob]], key: str, target: str, best: int) -> int:
    for glob in bins[key]:
        if glob.score <= best:
            break
        if glob.match(target):
            return glob.score
    return best


class RuleMatcher:
    """The rules of one group, compiled. `allows(url)` is the whole interface."""

    __slots__ = (
        "_exact",
        "_gram_bins",
        "_gram_top",
        "_head_bins",
        "_head_lengths",
        "_lengths",
        "_literal",
    )

    def __init__(self, rules: Iterable[tuple[bool, str]]) -> None:
        """`rules`: (allow, pattern as written). Patterns that start with neither `/` nor `*`
        match no path (RFC 9309 2.2: a path-pattern starts with "/") and are left out."""
        literal: dict[str, int] = {}
        exact: dict[str, int] = {}
        wild: dict[tuple[str, bool], int] = {}
        for allow, value in rules:
            if not value.startswith(("/", "*")):
                continue
            body, anchored = normalize_pattern(value)
            score = 2 * (len(body) + anchored) + allow
            # The same pattern twice: the higher score, so Allow wins.
            if "*" in body:
                if allow or (body, anchored) not in wild:
                    wild[body, anchored] = score
            else:
                table = exact if anchored else literal
                if allow or body not in table:
                    table[body] = score
        self._literal = literal
        self._exact = exact
        globs = [_Glob(score, body, anchored) for (body, anchored), score in wild.items()]
        self._lengths = _lengths_of(self._literal)
        self._head_bins, self._gram_bins = _file_globs(globs)
        self._gram_top = max((bin_[0].score for bin_ in self._gram_bins.values()), default=0)
        self._head_lengths = _lengths_of(self._head_bins)

    def allows(self, url: str) -> bool:
        target = target_of(url)
        if target == "/robots.txt":  # RFC 9309 2.2.2: implicitly allowed
            return True
        return self.best(target) & 1 == 1

    def best(self, target: str) -> int:
        """The score of the best rule matching a normalized target; 1 (an Allow of length 0)
        when none does."""
        size = len(target)
        best = 1
        literal = self._literal
        for length in self._lengths:
            if length <= size and target[:length] in literal:
                best = literal[target[:length]]
                break
        best = max(best, self._exact.get(target, 0))
        head_bins = self._head_bins
        for length in self._head_lengths:
            if length <= size and target[:length] in head_bins:
                best = _best_in(head_bins, target[:length], target, best)
        if self._gram_top > best:
            slices = {target[i : i + _GRAM] for i in range(size - _GRAM + 1)}
            for gram in self._gram_bins.keys() & slices:
                best = _best_in(self._gram_bins, gram, target, best)
        return best

    def __len__(self) -> int:
        """How many distinct patterns."""
        globs = sum(len(bin_) for bin_ in (*self._head_bins.values(), *self._gram_bins.values()))
        return len(self._literal) + len(self._exact) + globs


def _lengths_of(keys: Iterable[str]) -> tuple[int, ...]:
    return tuple(sorted({len(key) for key in keys}, reverse=True))


def _file_globs(globs: list[_Glob]) -> tuple[dict[str, list[_Glob]], dict[str, list[_Glob]]]:
    """Bins by head, and bins by a slice of a piece (the least used slice, so that patterns
    that share a common piece like `?sort=` spread out over their other slices)."""
    by_head: dict[str, list[_Glob]] = defaultdict(list)
    by_gram: dict[str, list[_Glob]] = defaultdict(list)
    for glob in globs:
        grams = [
            piece[i : i + _GRAM] for piece in glob.pieces() for i in range(len(piece) - _GRAM + 1)
        ]
        if len(glob.head) > _GRAM or not grams:
            by_head[glob.head].append(glob)
        else:
            by_gram[min(grams, key=lambda gram: len(by_gram.get(gram, ())))].append(glob)
    for bins in (by_head, by_gram):
        for bin_ in bins.values():
            bin_.sort(key=lambda glob: glob.score, reverse=True)
    return dict(by_head), dict(by_gram)
