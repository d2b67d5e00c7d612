"""One exception hierarchy for developer misuse, and the error kinds the model sees.

Every exception asyncfc raises at the developer is an :class:`AsyncFCError`; each names
what to change. The whole tree (where a class is defined elsewhere, its module is given;
every class is also importable from where the right column says)::

    AsyncFCError                     anything asyncfc raises at the developer (asyncfc)
    ├── ToolDefinitionError          a tool cannot be built (bad signature, schema, annotation),
    │                                or something that is not a tool was given as one (asyncfc)
    ├── ConfigurationError           an option has a value asyncfc does not know; also a
    │                                ValueError (asyncfc)
    ├── UsageError                   the API was called where or when it cannot work, e.g.
    │   │                            Agent.run_sync inside a running event loop, plot_timeline
    │   │                            without matplotlib (asyncfc)
    │   ├── SessionClosedError       a closed or cancelled session was used again (asyncfc)
    │   └── SessionBusyError         a session was asked to run a second user turn at once (asyncfc)
    ├── ModelError                   a model adapter failed: transport (the message names the
    │   │                            URL, and ``asyncfc model serve`` for a local one), protocol,
    │   │                            server error (asyncfc)
    │   └── EndpointUnreachable      the benchmark's model endpoint is down (asyncfc_bench.tasks,
    │                                asyncfc_bench.bfcl; the benchmark distribution)
    ├── LocalModelError              the embedded model could not be pulled, built or started;
    │   │                            also a RuntimeError (asyncfc, asyncfc.local)
    │   ├── WeightsError             weights unknown, missing or corrupt (asyncfc.local)
    │   ├── ServerError              llama-server could not be built, started or reached (asyncfc.local)
    │   ├── TemplatePatchError       the model's chat template cannot be patched (asyncfc.local)
    │   └── GGUFError                the weights file is not a readable GGUF (asyncfc.local)
    ├── ExecutorUnavailable          an executor cannot start or reach its workers, e.g. Ray is
    │                                not installed or its cluster is unreachable (asyncfc.executors)
    ├── ToolFailed                   ┐ raised only by Executor.run, whose caller (the scheduler)
    ├── ToolTimeout                  │ turns them into a CallError; a developer who calls an
    ├── WorkerLost                   ┘ executor directly sees them (asyncfc.executors)
    ├── UpstreamUnavailable          an upstream MCP server cannot be reached (it crashed, exited
    │                                or refuses connections) (asyncfc.integrations.mcp)
    └── UpstreamToolError            an upstream MCP server answered a call with an error; the
                                     proxy's model reads it as a tool_error (asyncfc.integrations.mcp)

Problems caused by model output (unknown tool, bad arguments, failing tools, ...) are
never raised: they resolve the call's future to a :class:`CallError` the model reads.
Internal invariants of asyncfc itself (a call delivered or a future resolved twice) raise
a plain ``RuntimeError``, as an ``assert`` would: they are bugs in asyncfc to report, not
mistakes a developer can fix, so ``except AsyncFCError`` does not hide them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "AsyncFCError",
    "CallError",
    "ConfigurationError",
    "ErrorKind",
    "LocalModelError",
    "ModelError",
    "SessionBusyError",
    "SessionClosedError",
    "ToolDefinitionError",
    "UsageError",
]


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


class UsageError(AsyncFCError):
    """The API was called where or when it cannot work; the message says what to call instead."""


class SessionBusyError(UsageError):
    """``session.run()`` was called while another run of the same session was in flight."""


class SessionClosedError(UsageError):
    """The session was closed or cancelled and cannot run another turn."""


class ModelError(AsyncFCError):
    """The model endpoint failed in a way the run cannot recover from."""


class LocalModelError(AsyncFCError, RuntimeError):
    """The embedded local model could not be pulled, built or started (``asyncfc.local``).

    Also a ``RuntimeError``, as it was before it joined this hierarchy."""


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
    """A call's failure, ``message`` in full (the model reads a bounded form of it: see
    :func:`asyncfc.model_text.error_json`)."""

    kind: ErrorKind
    message: str
