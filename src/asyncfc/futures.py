"""Futures, placeholders and references.

A future is the handle of one call's eventual value or error. The model sees it as a
*placeholder* and may write its ID (a *reference*: ``fut_3``, ``fut_3.price``,
``fut_3.items[0]``) inside later calls' arguments; the runtime substitutes the resolved
value, keeping its JSON type, or interpolates it as text inside a longer string.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from .errors import CallError, ErrorKind

__all__ = [
    "FUTURE_PREFIX",
    "REFERENCE",
    "Future",
    "as_text",
    "dumps",
    "future_id",
    "is_reference",
    "jsonable",
]

FUTURE_PREFIX = "fut_"
"""IDs are ``fut_<n>``, numbered in program order per session."""

_MAX_DIGITS = 18
"""The longest number read from model text as a sequence number or an index (``int()`` of a
model-written 5,000-digit number raises, and nothing here counts to 10**18)."""
_NUMBER = rf"([0-9]{{1,{_MAX_DIGITS}}})(?![0-9])"
"""A sequence number: ASCII digits only, at most :data:`_MAX_DIGITS` of them."""
_PATH = r"(?:\.[A-Za-z_][\w-]*|\[[0-9]+\])*"
REFERENCE = re.compile(rf"\b{FUTURE_PREFIX}{_NUMBER}({_PATH})")
_WHOLE = re.compile(rf"\s*{FUTURE_PREFIX}{_NUMBER}({_PATH})\s*")
_ID = re.compile(rf"\s*{FUTURE_PREFIX}{_NUMBER}\s*")
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[([0-9]+)\]")


def future_id(seq: int) -> str:
    return f"{FUTURE_PREFIX}{seq}"


def future_seq(text: str) -> int | None:
    """The sequence number a future id names (``"fut_3"``: 3), or None if ``text`` is not one."""
    m = _ID.fullmatch(text)
    return int(m.group(1)) if m else None


class Future:
    """Resolves exactly once, to a JSON-able value or a :class:`CallError`.

    Light on purpose (thousands are alive at once): an event-loop future is made only for a
    task that actually waits on a pending one.
    """

    __slots__ = ("_waiters", "done", "error", "id", "seq", "value")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.id = future_id(seq)
        self.value: Any = None
        self.error: CallError | None = None
        self.done = False
        self._waiters: list[asyncio.Future[None] | Callable[[], None]] | None = None
        """Tasks' waiters, and callbacks (:meth:`on_done`)."""

    @property
    def failed(self) -> bool:
        return self.error is not None

    def set_value(self, value: Any) -> None:
        self._check_pending()
        self.value = value
        self._wake()

    def set_error(self, error: CallError) -> None:
        self._check_pending()
        self.error = error
        self._wake()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until resolved (at most ``timeout`` seconds); whether it is resolved.

        Returns at once, without yielding to the event loop, when it already is.
        """
        if self.done:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, _release, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)  # timed out or cancelled
        return self.done

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (which must not raise) once resolved: a waiter without a task."""
        if self.done:
            callback()
            return
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(callback)

    def _wake(self) -> None:
        self.done = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if isinstance(waiter, asyncio.Future):
                _release(waiter)
            else:
                waiter()

    def _check_pending(self) -> None:
        if self.done:
            raise RuntimeError(f"future {self.id} resolved twice")


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ReferenceError_(LookupError):
    """A reference could not be resolved; ``error`` says why, for the model."""

    def __init__(self, error: CallError) -> None:
        super().__init__(error.message)
        self.error = error


def find_references(arguments: Any) -> set[int]:
    """Sequence numbers of every future referenced anywhere in the arguments."""
    found: set[int] = set()
    stack = [arguments]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if FUTURE_PREFIX in v:  # most strings name no future: skip the regex
                found.update(int(m.group(1)) for m in REFERENCE.finditer(v))
        elif isinstance(v, Mapping):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return found


def references_in(raw: str, arguments: Any) -> list[int]:
    """Sequence numbers of the futures referenced in arguments, in order, given their JSON text
    ``raw`` and its parsed value.

    JSON text without a backslash spells every key and string exactly as parsed, so the
    text itself is scanned (no walk over the parsed value); an escape could spell a
    reference (``\\u``) or change a word boundary (``\\n``), so then the value is walked."""
    if FUTURE_PREFIX not in raw and "\\u" not in raw:
        return []
    if "\\" not in raw:
        return sorted({int(m.group(1)) for m in REFERENCE.finditer(raw)})
    return sorted(find_references(arguments))


def holds_reference(value: Any) -> bool:
    """Whether a reference occurs anywhere in ``value`` (cheap for plain values)."""
    if isinstance(value, str):
        return FUTURE_PREFIX in value and REFERENCE.search(value) is not None
    return isinstance(value, (Mapping, list)) and bool(find_references(value))


def is_reference(value: Any) -> bool:
    """True for a string that is exactly one reference (used to widen labels)."""
    return isinstance(value, str) and _WHOLE.fullmatch(value) is not None


def _walk(value: Any, path: str, fid: str) -> Any:
    if not path:
        return value
    for m in _STEP.finditer(path):
        key, index = m.group(1), m.group(2)
        if key is not None:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if not isinstance(value, Mapping) or key not in value:
                raise ReferenceError_(
                    CallError(
                        ErrorKind.UNKNOWN_FUTURE, f"{fid}{path}: the result of {fid} has no field {key!r}"
                    )
                )
            value = value[key]
        else:
            i = int(index) if len(index) <= _MAX_DIGITS else -1  # a longer index is missing too
            if not isinstance(value, list) or not 0 <= i < len(value):
                raise ReferenceError_(
                    CallError(
                        ErrorKind.UNKNOWN_FUTURE, f"{fid}{path}: the result of {fid} has no item [{index}]"
                    )
                )
            value = value[i]
    return value


def substitute(
    arguments: Any, lookup: Callable[[int], Future | None], text_params: Collection[str] = ()
) -> Any:
    """Replace references by resolved values (keeping JSON types) or interpolated text.

    ``lookup`` returns the session's future for a sequence number, or None if unknown.
    Every referenced future must already be resolved successfully. A top-level argument
    named in ``text_params`` (a string parameter) receives the value as text, so a number
    passed on as ``"fut_2"`` becomes ``"270.0"`` there instead of failing validation.
    """

    if isinstance(arguments, Mapping) and text_params:
        return {
            k: as_text(_visit(v, lookup)) if k in text_params and isinstance(v, str) else _visit(v, lookup)
            for k, v in arguments.items()
        }
    return _visit(arguments, lookup)


# module functions, not closures: a recursive closure is a reference cycle, and through
# ``lookup`` it kept the whole session alive until the garbage collector found it
def _visit(v: Any, lookup: Callable[[int], Future | None]) -> Any:
    if isinstance(v, str):
        if FUTURE_PREFIX not in v:  # most strings name no future: skip the regexes
            return v
        whole = _WHOLE.fullmatch(v)
        if whole:
            return _value_of(lookup, int(whole.group(1)), whole.group(2))
        return REFERENCE.sub(lambda m: as_text(_value_of(lookup, int(m.group(1)), m.group(2))), v)
    if isinstance(v, Mapping):
        return {k: _visit(item, lookup) for k, item in v.items()}
    if isinstance(v, list):
        return [_visit(item, lookup) for item in v]
    return v


def _value_of(lookup: Callable[[int], Future | None], seq: int, path: str) -> Any:
    fut = lookup(seq)
    fid = future_id(seq)
    if fut is None:
        raise ReferenceError_(CallError(ErrorKind.UNKNOWN_FUTURE, f"unknown future {fid}{path}"))
    if fut.error is not None:
        raise ReferenceError_(
            CallError(
                ErrorKind.DEPENDENCY_FAILED, f"{fid} failed ({fut.error.kind.value}): {fut.error.message}"
            )
        )
    return _walk(fut.value, path, fid)


def as_text(value: Any) -> str:
    """A value as the model reads it: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return dumps(value, ensure_ascii=False)


def dumps(value: Any, *, ensure_ascii: bool = True) -> str:
    """JSON text the model can parse: ``NaN`` and infinities become the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"`` (``json.dumps`` would write invalid JSON), and an integer
    too long for Python to write as text (``sys.get_int_max_str_digits()``, 4,300 digits by
    default) becomes a string saying so (``json.dumps`` would raise)."""
    encode = _ASCII if ensure_ascii else _UNICODE
    try:
        return encode(value)
    except ValueError:
        return encode(_writable(value))


def _encoder(ensure_ascii: bool) -> Callable[[Any], str]:
    """``json.dumps(value, default=str, allow_nan=False)``, with the C encoder built once:
    ``JSONEncoder.encode`` builds one on every call, which costs more than encoding the
    small objects sent here. Without cycle detection: a circular value raises
    ``RecursionError`` either way (values from tools pass :func:`jsonable` first)."""
    try:
        from _json import encode_basestring, encode_basestring_ascii, make_encoder
    except ImportError:  # not CPython
        return json.JSONEncoder(default=str, ensure_ascii=ensure_ascii, allow_nan=False).encode
    strings = encode_basestring_ascii if ensure_ascii else encode_basestring
    c = make_encoder(None, str, strings, None, ": ", ", ", False, False, False)
    return lambda value: "".join(c(value, 0))


_ASCII = _encoder(ensure_ascii=True)
_UNICODE = _encoder(ensure_ascii=False)


def _writable(value: Any) -> Any:
    """``value`` with what JSON text cannot hold replaced by strings (see :func:`dumps`)."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            str(value)
        except ValueError:  # over sys.get_int_max_str_digits()
            return f"<an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits, too long to write>"
        return value
    if isinstance(value, Mapping):
        return {k: _writable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(v) for v in value]
    return value


_PLAIN = (str, int, float, bool)


def jsonable(value: Any) -> Any:
    """A tool's result as JSON-able data; anything that is not becomes its ``repr`` text
    (non-UTF-8 bytes, circular structures, objects without a JSON form)."""
    if value is None or type(value) in _PLAIN:
        return value
    try:
        return to_jsonable_python(value, fallback=repr)
    except Exception:  # noqa: BLE001 - pydantic raises several kinds here
        try:
            return repr(value)
        except Exception as exc:  # noqa: BLE001 - a __repr__ that raises
            return f"<{type(value).__name__} object: repr failed with {type(exc).__name__}>"


MAX_NESTING = 64
"""How deeply model-written arguments may nest (objects and arrays)."""


def nesting_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """True when ``value`` nests deeper than ``limit``; iterative, so any depth is safe to check."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def widen_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Let every top-level parameter accept a reference string as well as its own type."""
    out = dict(parameters)
    props = parameters.get("properties")
    if not isinstance(props, Mapping):
        return out
    ref = {"type": "string"}  # a future reference; the async instructions say how to write one
    widened: dict[str, Any] = {}
    for name, schema in props.items():
        if isinstance(schema, Mapping) and schema.get("type") == "string":
            widened[name] = dict(schema)
        else:
            widened[name] = {"anyOf": [dict(schema), ref]} if isinstance(schema, Mapping) else schema
    out["properties"] = widened
    return out
