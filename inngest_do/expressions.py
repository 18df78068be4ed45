"""CEL expressions, as Inngest uses them (``if_exp``, flow-control keys, trigger expressions).

Inngest writes conditions and keys in CEL over a few root variables: ``event`` (the run's
triggering event), ``async`` (an incoming event, in ``wait_for_event``/``cancel`` ``if_exp``)
and ``events`` (a batch). This module compiles such an expression once and evaluates it many
times over plain JSON-like dicts, through the Rust-backed ``common-expression-language``
package (import name ``cel``).

Behaviour worth knowing:

* ``async`` is an ordinary identifier for this CEL library (it is not reserved), so
  ``async.data.x`` needs no rewriting.
* Numbers keep their Python type: ``int`` stays a CEL ``int`` (or ``uint`` from 2**63 to
  2**64-1; beyond 64 bits the library turns it into a ``double``), ``float`` is a ``double``.
  Comparisons across int and double work (``event.data.n == 1`` is true for ``n = 1.0``;
  ``<``/``>`` too). CEL's arithmetic does not mix them, but Inngest reads every JSON number
  as a double, so ``event.data.price * 1.1 > 10`` holds there for ``{"price": 20}``: when an
  evaluation fails and the data holds ints, it is tried once more with every int as a double
  (so int-only arithmetic such as ``event.data.n + 1`` or ``% 2`` keeps working as ints,
  and mixed arithmetic works as in Inngest; one difference remains: ``event.data.a /
  event.data.b`` over two ints divides as ints here).
* A missing field is an evaluation error (use ``has(event.data.x)`` to test for it).

Speed: the library converts every variable passed to it into CEL values on each call, which
costs time proportional to the size of the data (about 1 µs per field), while evaluating a
compiled program is cheap. Two things keep that cost down:

* a *fast path*: an expression that is only a field path (``event.data.userId``,
  ``event.data["user-id"]``, ``event.name``) with a scalar result is evaluated by direct dict
  lookups (under 0.5 µs instead of 7 µs or more), with the same result and the same error/no-error
  outcome as CEL;
* *projection*: every other expression receives only the parts of each root variable it can
  reach by static field paths (a lexical analysis done once at compile time, conservative:
  anything it cannot follow is passed whole).
"""

from __future__ import annotations

import datetime
import functools
import json
import math
from collections.abc import Mapping
from typing import Any, Final

import cel

__all__ = ["ALLOWED_VARIABLES", "Expression", "ExpressionError"]

#: The root variables an expression may reference.
ALLOWED_VARIABLES: Final[frozenset[str]] = frozenset({"event", "async", "events"})

# CEL type identifiers, which the library reports as variables (``type(x) == map``).
_TYPE_NAMES: Final[frozenset[str]] = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)
# Macros whose first argument binds a new variable (``events.exists(e, e.name == "x")``).
_BINDING_MACROS: Final[frozenset[str]] = frozenset({"all", "exists", "exists_one", "map", "filter"})

_CACHE_SIZE: Final[int] = 4096
_INT_MIN: Final[int] = -(2**63)
_UINT_END: Final[int] = 2**64


class ExpressionError(ValueError):
    """An expression failed at evaluation time (missing field, type mismatch, ...).

    The message names the caller's label and the expression's source.
    """


class _CompileError(Exception):
    """Internal: a reason why a source does not compile (the caller adds the label)."""


# --------------------------------------------------------------------------------------------
# Lexing (only what the static analysis needs; CEL itself validates the syntax)
# --------------------------------------------------------------------------------------------

_ID: Final[str] = "id"
_STR: Final[str] = "str"  # value: the decoded text, or None when not a plain string literal
_NUM: Final[str] = "num"
_OP: Final[str] = "op"

_TWO_CHAR_OPS: Final[frozenset[str]] = frozenset({"==", "!=", "<=", ">=", "&&", "||"})
_ONE_CHAR_OPS: Final[str] = "+-*/%!<>?:.,()[]{}"
_ID_START: Final[str] = "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_CHARS: Final[str] = _ID_START + "0123456789"
_DIGITS: Final[str] = "0123456789"
_HEX: Final[str] = "0123456789abcdefABCDEF"


class _LexError(Exception):
    """Internal: the lexer met text it does not understand (analysis is then skipped)."""


def _lex(source: str) -> list[tuple[str, object]]:
    """Split CEL source into (kind, value) tokens. O(len(source)).

    Raises:
        _LexError: on any text this small lexer does not handle.
    """
    tokens: list[tuple[str, object]] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in " \t\n\r\f":
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch in _ID_START:
            j = i + 1
            while j < n and source[j] in _ID_CHARS:
                j += 1
            word = source[i:j]
            if j < n and source[j] in "'\"" and word.lower() in {"r", "b", "rb", "br"}:
                prefix = word.lower()
                i = _lex_string(source, j, tokens, raw="r" in prefix, data="b" in prefix)
            else:
                tokens.append((_ID, word))
                i = j
        elif ch in "'\"":
            i = _lex_string(source, i, tokens, raw=False, data=False)
        elif ch in _DIGITS or (ch == "." and i + 1 < n and source[i + 1] in _DIGITS):
            i = _lex_number(source, i)
            tokens.append((_NUM, None))
        elif source[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append((_OP, source[i : i + 2]))
            i += 2
        elif ch in _ONE_CHAR_OPS:
            tokens.append((_OP, ch))
            i += 1
        else:
            raise _LexError(f"unexpected character {ch!r} at {i}")
    return tokens


def _lex_string(
    source: str, i: int, tokens: list[tuple[str, object]], *, raw: bool, data: bool
) -> int:
    """Lex a string literal starting at its opening quote; append it; return the end index."""
    quote = source[i]
    delim = quote * 3 if source.startswith(quote * 3, i) else quote
    j = i + len(delim)
    n = len(source)
    escaped = False
    while True:
        if j >= n:
            raise _LexError("unterminated string")
        if source[j] == "\\":
            escaped = True
            j += 2
            continue
        if source.startswith(delim, j):
            break
        if len(delim) == 1 and source[j] == "\n":
            raise _LexError("newline in string")
        j += 1
    body = source[i + len(delim) : j]
    # Only plain literals are decoded (escapes would need CEL's full escape rules).
    value = None if data or (escaped and not raw) else body
    tokens.append((_STR, value))
    return j + len(delim)


def _lex_number(source: str, i: int) -> int:
    """Skip a numeric literal (int, uint, hex, double); return the end index."""
    n = len(source)
    if source.startswith(("0x", "0X"), i):
        j = i + 2
        while j < n and source[j] in _HEX:
            j += 1
    else:
        j = i
        while j < n and source[j] in _DIGITS:
            j += 1
        if j < n and source[j] == "." and j + 1 < n and source[j + 1] in _DIGITS:
            j += 1
            while j < n and source[j] in _DIGITS:
                j += 1
        if j < n and source[j] in "eE":
            k = j + 1
            if k < n and source[k] in "+-":
                k += 1
            if k < n and source[k] in _DIGITS:
                j = k
                while j < n and source[j] in _DIGITS:
                    j += 1
    if j < n and source[j] in "uU":
        j += 1
    return j


# --------------------------------------------------------------------------------------------
# Static analysis: bound names, field paths per root, fast path
# --------------------------------------------------------------------------------------------

# A projection trie: field name -> sub-trie, or None meaning "this value, whole".
_Trie = dict[str, Any]

# Tokens after which a "." selects a field (anything else before "." is a leading-dot name).
_OPERAND_END_OPS: Final[frozenset[str]] = frozenset({")", "]", "}"})


class _Analysis:
    """What the lexical analysis of one source found."""

    __slots__ = ("bound", "fast_path", "paths")

    def __init__(
        self,
        bound: frozenset[str],
        paths: dict[str, list[tuple[str, ...]]],
        fast_path: tuple[str, tuple[str, ...]] | None,
    ) -> None:
        self.bound = bound
        # root -> the static field paths read from it (an empty path: the root is read whole)
        self.paths = paths
        self.fast_path = fast_path


def _analyse(tokens: list[tuple[str, object]]) -> _Analysis:
    """Find macro-bound names, the static field paths read from each root, and the fast path.

    O(number of tokens). Conservative: a root occurrence that is not followed by a plain
    chain of ``.ident`` / ``["literal"]`` selections is recorded as read whole.
    """
    n = len(tokens)
    bound: set[str] = set()
    paths: dict[str, list[tuple[str, ...]]] = {}
    fast_path: tuple[str, tuple[str, ...]] | None = None
    for i, (kind, value) in enumerate(tokens):
        prev = tokens[i - 1] if i > 0 else None
        if kind == _OP and value == ".":
            # A leading dot (``.event``) names an absolute identifier: give up on the analysis.
            if prev is None or (prev[0] == _OP and prev[1] not in _OPERAND_END_OPS):
                raise _LexError("leading-dot identifier")
            continue
        if kind != _ID:
            continue
        nxt = tokens[i + 1] if i + 1 < n else None
        if (
            value in _BINDING_MACROS
            and prev == (_OP, ".")
            and nxt == (_OP, "(")
            and i + 3 < n
            and tokens[i + 2][0] == _ID
            and tokens[i + 3] == (_OP, ",")
        ):
            bound.add(str(tokens[i + 2][1]))
        if prev == (_OP, ".") or nxt == (_OP, "(") or value not in ALLOWED_VARIABLES:
            continue
        # A root occurrence: follow its static selections.
        path: list[str] = []
        j = i + 1
        while j < n:
            tok = tokens[j]
            if (
                tok == (_OP, ".")
                and j + 1 < n
                and tokens[j + 1][0] == _ID
                and (j + 2 >= n or tokens[j + 2] != (_OP, "("))
            ):
                path.append(str(tokens[j + 1][1]))
                j += 2
            elif (
                tok == (_OP, "[")
                and j + 2 < n
                and tokens[j + 1][0] == _STR
                and tokens[j + 1][1] is not None
                and tokens[j + 2] == (_OP, "]")
            ):
                path.append(str(tokens[j + 1][1]))
                j += 3
            else:
                break
        paths.setdefault(str(value), []).append(tuple(path))
        if i == 0 and j == n:
            fast_path = (str(value), tuple(path))
    if fast_path is not None and fast_path[0] in bound:
        fast_path = None
    return _Analysis(frozenset(bound), paths, fast_path)


def _build_trie(paths: list[tuple[str, ...]]) -> _Trie | None:
    """Merge static paths into a projection trie; None when the root must be passed whole."""
    root: _Trie = {}
    for path in paths:
        if not path:
            return None
        node = root
        for depth, key in enumerate(path):
            last = depth == len(path) - 1
            if key in node:
                child = node[key]
                if child is None:
                    break  # already whole
                if last:
                    node[key] = None
                    break
                node = child
            elif last:
                node[key] = None
            else:
                node[key] = {}
                node = node[key]
    return root


def _project(value: object, trie: _Trie) -> object:
    """Copy of ``value`` keeping only the trie's fields (dicts only; anything else as-is).

    A field missing from ``value`` stays missing, so CEL reports the same error. O(trie size).
    """
    if not isinstance(value, dict):
        return value
    out: dict[object, object] = {}
    for key, sub in trie.items():
        if key in value:
            item = value[key]
            out[key] = item if sub is None else _project(item, sub)
    return out


# --------------------------------------------------------------------------------------------
# Compilation (cached by source)
# --------------------------------------------------------------------------------------------


class _Compiled:
    """The shared, immutable result of compiling one source."""

    __slots__ = ("fast_keys", "fast_root", "program", "roots", "variables")

    def __init__(
        self,
        program: cel.Program,
        roots: tuple[tuple[str, _Trie | None], ...],
        fast_path: tuple[str, tuple[str, ...]] | None,
    ) -> None:
        self.program = program
        self.roots = roots
        self.fast_root = fast_path[0] if fast_path else None
        self.fast_keys = fast_path[1] if fast_path else ()
        self.variables = frozenset(name for name, _ in roots)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile_source(source: str) -> _Compiled:
    """Compile and analyse one source (LRU-cached: the same text compiles once).

    Raises:
        _CompileError: the source does not compile or references unknown variables.
    """
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError, TypeError) as exc:  # the library raises ValueError
        reason = str(exc)
        prefix = f"Failed to parse expression {source!r}: "
        reason = reason.removeprefix(prefix)
        raise _CompileError(reason) from None
    referenced = set(program.variables())
    try:
        analysis: _Analysis | None = _analyse(_lex(source))
    except _LexError:
        analysis = None
    bound = analysis.bound if analysis is not None else frozenset()
    unknown = referenced - ALLOWED_VARIABLES - _TYPE_NAMES - bound
    if unknown:
        names = ", ".join(sorted(unknown))
        allowed = ", ".join(sorted(ALLOWED_VARIABLES))
        raise _CompileError(f"unknown variable(s) {names} (an expression may use {allowed})")
    roots: list[tuple[str, _Trie | None]] = []
    for name in sorted(referenced & ALLOWED_VARIABLES):
        trie = None
        if analysis is not None and name in analysis.paths and name not in bound:
            trie = _build_trie(analysis.paths[name])
        roots.append((name, trie))
    fast = analysis.fast_path if analysis is not None else None
    return _Compiled(program, tuple(roots), fast)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

_MISSING: Final = object()  # fast path: the lookup fails (CEL would raise)
_DEFER: Final = object()  # fast path: not a plain scalar, let CEL decide
_JSON_SCALARS: Final = (str, bool, float, type(None))
_ERROR_LEAVES: Final = (list, tuple, str, int, float, bool, type(None))


def _fast_lookup(variables: Mapping[str, object], root: str, keys: tuple[str, ...]) -> object:
    """Evaluate a field path by dict lookups. O(len(keys)).

    Returns the scalar value (converted as CEL converts it), ``_MISSING`` where CEL raises an
    error, or ``_DEFER`` where the result is not a plain scalar (CEL must decide).
    """
    current = variables.get(root, _MISSING)
    if current is _MISSING:
        return _MISSING
    for key in keys:
        if isinstance(current, dict):
            current = current.get(key, _MISSING)
            if current is _MISSING:
                return _MISSING
        elif isinstance(current, _ERROR_LEAVES):
            return _MISSING  # selecting a field of a non-map is a CEL error
        else:
            return _DEFER
    kind = type(current)
    if kind is int:
        # CEL's conversion: int64, then uint64, then double beyond 64 bits.
        return current if _INT_MIN <= current < _UINT_END else float(current)
    if kind in _JSON_SCALARS:
        return current
    return _DEFER


def _ints_as_doubles(value: object) -> Any:
    """A copy of ``value`` with every int (not bool) a float, as Inngest reads JSON numbers;
    None when it holds no int (trying again would change nothing). O(size of value)."""
    found = False

    def conv(item: object) -> object:
        nonlocal found
        kind = type(item)
        if kind is int:
            found = True
            return float(item)  # type: ignore[arg-type]
        if kind is dict:
            return {k: conv(v) for k, v in item.items()}  # type: ignore[attr-defined]
        if kind is list or kind is tuple:
            return [conv(v) for v in item]  # type: ignore[attr-defined]
        return item

    out = conv(value)
    return out if found else None


def _to_plain(value: object) -> object:
    """Convert a CEL result to plain Python (bool/int/float/str/None/list/dict).

    Timestamps become RFC 3339 strings (``...Z`` in UTC), durations CEL duration strings
    (``"1.5s"``), bytes UTF-8 text (invalid sequences replaced), optionals their value or None.
    O(size of the value).
    """
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return value
    if kind is list or kind is tuple:
        return [_to_plain(item) for item in value]  # type: ignore[attr-defined]
    if kind is dict:
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}  # type: ignore[attr-defined]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        text = value.replace(tzinfo=None).isoformat()
        return text + "Z"
    if isinstance(value, datetime.timedelta):
        seconds = value / datetime.timedelta(seconds=1)
        return f"{seconds:g}s" if seconds != int(seconds) else f"{int(seconds)}s"
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, cel.OptionalValue):
        return _to_plain(value.value()) if value.has_value() else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _normalise_for_key(value: object) -> object:
    """Integral floats (|x| < 2**53) become ints, so 1 and 1.0 give the same key."""
    kind = type(value)
    if kind is float:
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:  # type: ignore[attr-defined]
            return int(value)  # type: ignore[call-overload]
        return value
    if kind is list:
        return [_normalise_for_key(item) for item in value]  # type: ignore[attr-defined]
    if kind is dict:
        return {str(k): _normalise_for_key(v) for k, v in value.items()}  # type: ignore[attr-defined]
    return value


def _render_key(value: object) -> str | None:
    """Render a key value: strings as-is, None as None, anything else as compact sorted JSON."""
    if type(value) is str:
        return value  # type: ignore[return-value]
    if value is None:
        return None
    return json.dumps(_normalise_for_key(value), sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class Expression:
    """A compiled CEL expression over ``event``, ``async`` and ``events``.

    Build with :meth:`compile`. Instances are immutable and cheap; the compiled program is
    shared between all instances with the same source.
    """

    __slots__ = ("_compiled", "source", "what")

    source: str
    what: str

    def __init__(self, source: str, what: str, compiled: _Compiled) -> None:
        """Internal: use :meth:`Expression.compile`."""
        self.source = source
        self.what = what
        self._compiled = compiled

    @classmethod
    def compile(cls, source: str, *, what: str) -> Expression:
        """Compile ``source`` once (LRU-cached by source text) and validate its variables.

        Args:
            source: CEL text, e.g. ``"event.data.order_id == async.data.order_id"``.
            what: The caller's label for error messages, e.g. ``"cancel[1].if_exp"``.

        Raises:
            TypeError: ``source`` is not a string (same message format).
            ValueError: ``f"{what}: invalid expression {source!r}: <reason>"`` when the text
                does not parse, or references a variable other than ``event``,
                ``async`` and ``events`` (variables bound by macros such as
                ``events.exists(e, ...)`` and CEL type names are allowed).

        Complexity: O(len(source)) on first use of a source, O(1) afterwards.
        """
        if not isinstance(source, str):
            raise TypeError(
                f"{what}: invalid expression {source!r}: expected a str, "
                f"got {type(source).__name__}"
            )
        try:
            compiled = _compile_source(source)
        except _CompileError as exc:
            raise ValueError(f"{what}: invalid expression {source!r}: {exc}") from None
        return cls(source, what, compiled)

    @property
    def variables(self) -> frozenset[str]:
        """The root variables (``event``, ``async``, ``events``) the expression reads."""
        return self._compiled.variables

    @property
    def is_field_path(self) -> bool:
        """True when the source is a plain field path evaluated by the dict-lookup fast path."""
        return self._compiled.fast_root is not None

    def evaluate(self, variables: Mapping[str, object]) -> object:
        """Evaluate over ``variables`` (e.g. ``{"event": {...}, "async": {...}}``).

        Returns a plain Python value (bool, int, float, str, None, list, dict; see
        :func:`_to_plain` for timestamps, durations and bytes). Variables the expression does
        not reference are ignored; a referenced one that is absent is an error.

        Raises:
            ExpressionError: on any evaluation error (missing field, no such overload, ...);
                the message holds the label, the source and the library's reason.

        Complexity: O(length of the path) on the fast path; otherwise the CEL evaluation plus
        O(size of the projected data).
        """
        compiled = self._compiled
        if compiled.fast_root is not None:
            result = _fast_lookup(variables, compiled.fast_root, compiled.fast_keys)
            if result is not _MISSING and result is not _DEFER:
                return result
            # On _MISSING fall through: CEL raises the error with its own message.
        return self._evaluate_cel(variables)

    def evaluate_bool(self, variables: Mapping[str, object]) -> bool:
        """True only when the expression evaluates to the boolean ``true``.

        An evaluation error or a non-bool result counts as False, which is how Inngest treats a
        failing ``if``/``if_exp``. Never raises for evaluation problems.
        """
        compiled = self._compiled
        if compiled.fast_root is not None:
            result = _fast_lookup(variables, compiled.fast_root, compiled.fast_keys)
            if result is _MISSING:
                return False
            if result is not _DEFER:
                return result is True
        try:
            return self._evaluate_cel(variables) is True
        except ExpressionError:
            return False

    def evaluate_key(self, variables: Mapping[str, object]) -> str | None:
        """Evaluate a flow-control key and render it as a stable string.

        Strings are returned as they are; every other value is rendered as compact JSON with
        sorted keys (``json.dumps(v, sort_keys=True, separators=(",", ":"))``), after turning
        integral floats below 2**53 into ints so that ``1`` and ``1.0`` give the same key
        (``"1"``). ``true`` gives ``"true"``. Note that the string ``"1"`` and the number ``1``
        render the same.

        Returns None when the evaluation fails (missing field, type error, ...) or the value is
        ``null``; the caller decides what a missing key means. Never raises for evaluation
        problems.
        """
        compiled = self._compiled
        if compiled.fast_root is not None:
            result = _fast_lookup(variables, compiled.fast_root, compiled.fast_keys)
            if result is _MISSING:
                return None
            if result is not _DEFER:
                return _render_key(result)
        try:
            return _render_key(self._evaluate_cel(variables))
        except ExpressionError:
            return None

    def _evaluate_cel(self, variables: Mapping[str, object], *, project: bool = True) -> object:
        """Evaluate through the CEL library (``project=False`` passes each root whole)."""
        compiled = self._compiled
        context: dict[str, object] = {}
        for name, trie in compiled.roots:
            value = variables.get(name, _MISSING)
            if value is _MISSING:
                continue
            context[name] = value if trie is None or not project else _project(value, trie)
        try:
            result = compiled.program.execute(context)
        except Exception as exc:  # the library raises KeyError, TypeError, RuntimeError, ...
            # A missing field stays missing; anything else may be ints meeting doubles.
            doubles = None if isinstance(exc, KeyError) else _ints_as_doubles(context)
            if doubles is not None:
                try:
                    return _to_plain(compiled.program.execute(doubles))
                except Exception:  # noqa: BLE001, S110 - report the first error, not this one
                    pass
            raise ExpressionError(
                f"{self.what}: cannot evaluate {self.source!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return _to_plain(result)

    def matches(self, variables: Mapping[str, object]) -> bool:
        """Like :meth:`evaluate_bool`, but an evaluation error raises instead of counting as
        False, so the caller can record it (a trigger, cancel or wait condition that cannot
        be evaluated leaves an outcome saying why).

        Raises:
            ExpressionError: the evaluation failed (missing field, no such overload, ...).
        """
        compiled = self._compiled
        if compiled.fast_root is not None:
            result = _fast_lookup(variables, compiled.fast_root, compiled.fast_keys)
            if result is not _MISSING and result is not _DEFER:
                return result is True
            # _MISSING: CEL raises the error with its own message
        return self._evaluate_cel(variables) is True

    def __repr__(self) -> str:
        return f"Expression({self.source!r}, what={self.what!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(("Expression", self.source))
