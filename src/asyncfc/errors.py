"""One exception hierarchy for developer misuse, and the error kinds the model sees.

    AsyncFCError                  anything asyncfc raises at the developer
    ├── ToolDefinitionError       a tool cannot be built (bad signature, schema, annotation)
    ├── ConfigurationError        an option has a value asyncfc does not know (also a ValueError)
    ├── SessionClosedError        a closed or cancelled session was used again
    ├── SessionBusyError          a session was asked to run a second user turn at once
    └── ModelError                a model adapter failed (transport, protocol, server error)

Problems caused by model output (unknown tool, bad arguments, failing tools, ...) are
never raised: they resolve the call's future to a :class:`CallError` the model reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any


class AsyncFCError(Exception):
    """Base class of every exception asyncfc raises."""


def describe(exc: BaseException) -> str:
    """``Type: message`` of any exception, also one whose ``__str__`` raises or returns a
    non-string (formatting a tool's exception must not fail in its turn)."""
    try:
        text = str(exc)
    except Exception as err:  # noqa: BLE001 - whatever a tool's __str__ raises
        text = f"<its str() raised {type(err).__name__}>"
    return f"{type(exc).__name__}: {text}"


def check_choice(option: str, value: Any, valid: Sequence[str]) -> None:
    """Raise :class:`ConfigurationError`, listing the valid values, unless ``value`` is one."""
    if value not in valid:
        raise ConfigurationError(f"unknown {option} {value!r}; valid values: {', '.join(valid)}")


def check_number(
    option: str, value: Any, minimum: float, *, above: bool = False, integer: bool = False, none: bool = False
) -> None:
    """Raise :class:`ConfigurationError` unless ``value`` is a finite number at least
    ``minimum`` (greater than it if ``above``; an ``int`` if ``integer``; or ``None`` if ``none``)."""
    if value is None and none:
        return
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not math.isfinite(value)
        or value < minimum
        or (above and value == minimum)
    ):
        what = "an integer" if integer else "a number"
        bound = f"greater than {minimum:g}" if above else f"of at least {minimum:g}"
        raise ConfigurationError(
            f"{option} must be {what} {bound}{' or None' if none else ''}, got {value!r}"
        )


class ToolDefinitionError(AsyncFCError):
    """A tool could not be built from the given function or schema."""


class ConfigurationError(AsyncFCError, ValueError):
    """An option was given a value asyncfc does not know; the message lists the valid ones."""


class SessionBusyError(AsyncFCError):
    """``session.run()`` was called while another run of the same session was in flight."""


class SessionClosedError(AsyncFCError):
    """The session was closed or cancelled and cannot run another turn."""


class ModelError(AsyncFCError):
    """The model endpoint failed in a way the run cannot recover from."""


class ErrorKind(str, Enum):
    """Why a call resolved to an error instead of a value."""

    UNKNOWN_TOOL = "unknown_tool"
    INVALID_ARGUMENTS = "invalid_arguments"
    UNKNOWN_FUTURE = "unknown_future"
    DEPENDENCY_FAILED = "dependency_failed"
    TOOL_ERROR = "tool_error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    LIMIT = "limit"
    WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class CallError:
    """A call's failure: ``message`` in full for the developer, at most
    :data:`MAX_ERROR_CHARS` of it for the model (an exception's text or an echoed tool name
    can be megabytes, and every later prompt would carry it)."""

    kind: ErrorKind
    message: str

    def to_json(self) -> dict[str, Any]:
        """What the model reads."""
        text = self.message
        if len(text) > MAX_ERROR_CHARS:
            text = text[:MAX_ERROR_CHARS] + f"... [truncated: {len(text):,} characters in all]"
        return {"error": {"type": self.kind.value, "message": text}}


MAX_ERROR_CHARS = 2000
"""How much of an error message the model reads."""
