"""``--where``: a small filter language over a job's items, parsed here, never SQL.

An admin choosing what to re-run writes things like::

    state = failed and error_code != pdf_encrypted
    media_type ~ "image/*" or (page_count > 50 and size_bytes < 20MB)
    not path ~ "*/drafts/*" and model_sha256 != current
    inclusive != false and level <= 1

Grammar (keywords and field names case-insensitive)::

    expression  := disjunction
    disjunction := conjunction ("or" conjunction)*
    conjunction := negation ("and" negation)*
    negation    := "not" negation | primary
    primary     := "(" expression ")" | FIELD OPERATOR VALUE
    OPERATOR    := "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"
    VALUE       := NUMBER [B|KB|MB|GB|KiB|MiB|GiB] | "quoted" | 'quoted' | WORD

``~`` is a shell glob (``fnmatch``: ``*`` also matches ``/``), ``!~`` its
negation. ``null`` (unquoted) stands for "no value" (no error code, no
result yet); ``current`` (unquoted, for ``model_sha256``) for the model the
re-run will use. An expression is parsed into a tree of plain predicates and
evaluated against :class:`ItemFacts`; the user's text never reaches the
database. A bad expression raises :class:`FilterSyntaxError`, a usage error
naming the position and what was expected there.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from db.models import ItemState
from worker import errors

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~", "!~")
ORDERING = ("<", "<=", ">", ">=")
GLOBS = ("~", "!~")
SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


@dataclass(frozen=True)
class ItemFacts:
    """What a filter can ask about one item, in the run being re-run.

    ``state`` and ``error_code`` are the item's in that run; ``model_sha256``
    and ``task_version`` those of its result there (None: no result).
    """

    state: str
    error_code: str | None
    media_type: str
    path: str
    custodian: str | None
    size_bytes: int
    page_count: int | None
    model_sha256: str | None
    task_version: str | None
    level: int = 0  # 0: submitted; 1: found in a submitted item; …
    family_id: int | None = None
    thread_id: str | None = None  # e-mail only
    inclusive: bool | None = None  # e-mail only, once its run has threaded it


@dataclass(frozen=True)
class FieldSpec:
    """How one field compares: as text, a number, a version number, or true/false."""

    kind: str  # "text", "number", "version", "flag"
    operators: tuple[str, ...]


FIELDS: dict[str, FieldSpec] = {
    "state": FieldSpec("text", ("=", "!=")),
    "error_code": FieldSpec("text", ("=", "!=", "~", "!~")),
    "media_type": FieldSpec("text", ("=", "!=", "~", "!~")),
    "path": FieldSpec("text", ("=", "!=", "~", "!~")),
    "custodian": FieldSpec("text", ("=", "!=", "~", "!~")),
    "size_bytes": FieldSpec("number", ("=", "!=", *ORDERING)),
    "page_count": FieldSpec("number", ("=", "!=", *ORDERING)),
    "model_sha256": FieldSpec("text", ("=", "!=")),
    "task_version": FieldSpec("version", ("=", "!=", *ORDERING)),
    "level": FieldSpec("number", ("=", "!=", *ORDERING)),
    "family_id": FieldSpec("number", ("=", "!=")),
    "thread_id": FieldSpec("text", ("=", "!=", "~", "!~")),
    "inclusive": FieldSpec("flag", ("=", "!=")),
}


class FilterSyntaxError(errors.UsageError):
    """The --where expression could not be understood."""

    code = "invalid_filter"

    def __init__(self, source: str, position: int, problem: str) -> None:
        pointer = " " * position + "^"
        super().__init__(f"--where: {problem} at position {position + 1}\n  {source}\n  {pointer}")
        self.position = position


@dataclass(frozen=True)
class Context:
    """Values the expression refers to by name (``current``)."""

    current_model_sha256: str | None = None


Predicate = Callable[[ItemFacts, Context], bool]


@dataclass(frozen=True)
class ItemFilter:
    """A parsed expression: call :meth:`matches` for each item."""

    source: str
    predicate: Predicate
    uses_current_model: bool

    def matches(self, facts: ItemFacts, context: Context = Context()) -> bool:
        return self.predicate(facts, context)


# --- tokens -------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<operator>!=|<=|>=|!~|=|<|>|~)
  | (?P<paren>[()])
  | (?P<number>\d+(?:\.\d+)?(?:[A-Za-z]+)?(?![\w./*?\[\]+-]))
  | (?P<word>[\w./*?\[\]+-]+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string, operator, paren, number, word, end
    text: str
    position: int


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise FilterSyntaxError(source, position, f"unexpected character {source[position]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


# --- the parser ---------------------------------------------------------------


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokens(source)
        self.index = 0
        self.uses_current_model = False

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, expected: str) -> FilterSyntaxError:
        found = f"{self.token.text!r}" if self.token.kind != "end" else "the end"
        return FilterSyntaxError(
            self.source, self.token.position, f"expected {expected}, found {found}"
        )

    def keyword(self, word: str) -> bool:
        if self.token.kind == "word" and self.token.text.lower() == word:
            self.index += 1
            return True
        return False

    def parse(self) -> Predicate:
        if self.token.kind == "end":
            raise self.fail("a comparison such as state = failed")
        predicate = self.disjunction()
        if self.token.kind != "end":
            raise self.fail("'and', 'or' or the end of the expression")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("or"):
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda facts, context: any(part(facts, context) for part in parts)

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.keyword("and"):
            parts.append(self.negation())
        if len(parts) == 1:
            return parts[0]
        return lambda facts, context: all(part(facts, context) for part in parts)

    def negation(self) -> Predicate:
        if self.keyword("not"):
            inner = self.negation()
            return lambda facts, context: not inner(facts, context)
        return self.primary()

    def primary(self) -> Predicate:
        if self.token.kind == "paren" and self.token.text == "(":
            self.index += 1
            inner = self.disjunction()
            if not (self.token.kind == "paren" and self.token.text == ")"):
                raise self.fail("')'")
            self.index += 1
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        if self.token.kind != "word" or self.token.text.lower() not in FIELDS:
            raise self.fail(f"a field ({', '.join(FIELDS)}) or '('")
        name = self.token.text.lower()
        spec = FIELDS[name]
        self.index += 1
        if self.token.kind != "operator":
            raise self.fail(f"an operator ({' '.join(spec.operators)})")
        operator = self.token.text
        if operator not in spec.operators:
            raise self.fail(f"an operator {name} takes ({' '.join(spec.operators)})")
        self.index += 1
        value = self.value(name, spec, operator)
        return _comparison(name, spec, operator, value)

    def value(self, name: str, spec: FieldSpec, operator: str) -> Any:
        token = self.token
        if token.kind == "end" or token.kind in ("operator", "paren"):
            raise self.fail(f"a value for {name}")
        self.index += 1
        if token.kind == "word" and token.text.lower() == "null" and operator in ("=", "!="):
            if name == "state":
                raise FilterSyntaxError(self.source, token.position, "every item has a state")
            return None
        if name == "model_sha256" and token.kind == "word" and token.text.lower() == "current":
            self.uses_current_model = True
            return _CURRENT
        if spec.kind == "number":
            return _number(self.source, token)
        text = _unquote(token.text) if token.kind == "string" else token.text
        if spec.kind == "flag":
            if text.lower() not in ("true", "false"):
                raise FilterSyntaxError(self.source, token.position, "expected true or false")
            return text.lower() == "true"
        if name == "state":
            return _state(self.source, token, text)
        if spec.kind == "version" and not text.isdigit():
            raise FilterSyntaxError(self.source, token.position, "expected a version number")
        return text


class _Current:
    """The marker for ``current``: resolved from the :class:`Context` at evaluation."""


_CURRENT = _Current()


def _number(source: str, token: _Token) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", token.text)
    if token.kind != "number" or match is None:
        raise FilterSyntaxError(source, token.position, f"expected a number, found {token.text!r}")
    unit = match.group(2).lower() or "b"
    if unit not in SIZE_UNITS:
        raise FilterSyntaxError(
            source,
            token.position,
            f"unknown unit {match.group(2)!r} (B, KB, MB, GB, KiB, MiB, GiB)",
        )
    return int(float(match.group(1)) * SIZE_UNITS[unit])


def _state(source: str, token: _Token, text: str) -> str:
    states = [state.value for state in ItemState]
    if text not in states:
        raise FilterSyntaxError(
            source, token.position, f"expected a state ({', '.join(states)}), found {text!r}"
        )
    return text


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _comparison(name: str, spec: FieldSpec, operator: str, value: Any) -> Predicate:
    def predicate(facts: ItemFacts, context: Context) -> bool:
        actual = getattr(facts, name)
        expected = context.current_model_sha256 if value is _CURRENT else value
        return _compare(spec.kind, operator, actual, expected)

    return predicate


def _compare(kind: str, operator: str, actual: Any, expected: Any) -> bool:
    """One comparison; an absent value matches only ``= null`` and ``!= something``."""
    if operator == "=":
        return bool(actual == expected) if kind != "version" else _version_equal(actual, expected)
    if operator == "!=":
        return not _compare(kind, "=", actual, expected)
    if actual is None:
        return operator == "!~"
    if operator in GLOBS:
        matched = fnmatch.fnmatchcase(str(actual), str(expected))
        return matched if operator == "~" else not matched
    left, right = (
        (_version(actual), _version(expected)) if kind == "version" else (actual, expected)
    )
    if left is None or right is None:
        return False
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[operator]


def _version(value: Any) -> int | None:
    text = str(value)
    return int(text) if text.isdigit() else None


def _version_equal(actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return _version(actual) == _version(expected) and _version(actual) is not None


def parse(source: str) -> ItemFilter:
    """Parse ``source`` into a filter; raise :class:`FilterSyntaxError` if it is not one."""
    parser = _Parser(source)
    predicate = parser.parse()
    return ItemFilter(source, predicate, parser.uses_current_model)
