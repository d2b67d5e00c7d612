"""Everything the model reads from asyncfc, written in one place and in one shape.

A tool message in sync and parallel mode is the value itself (text as it is, anything else
as JSON) or ``{"error": {"type", "message"}}``. In async mode every statement about a call
is a *future object*::

    {"future": "fut_3", "status": "pending"}                  # placeholder ("fields" if the tool has an example)
    {"future": "fut_3", "status": "resolved", "value": ...}   # its value
    {"future": "fut_3", "status": "failed", "error": {...}}   # its failure
    {"future": "fut_3", "status": "delivered", "note": ...}   # asked for again

A message about several calls (an ``await_future`` answer for several ids, a delivery at a
turn boundary) is a JSON array of future objects; values of earlier calls ride along with a
later one under ``resolved_earlier``. Nothing is ever JSON inside a JSON string.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import CallError, ErrorKind
from .futures import FUTURE_PREFIX, dumps, widen_schema
from .mode import Mode
from .tools import Tool

__all__ = [
    "ANSWER_NOW",
    "ASYNC_INSTRUCTIONS",
    "AWAIT_SPEC",
    "AWAIT_TOOL",
    "EARLIER",
    "MAX_ERROR_CHARS",
    "NATIVE_ASYNC_INSTRUCTIONS",
    "SETTLED_PROMPT",
    "await_answer",
    "bad_await",
    "delivered",
    "error_json",
    "failed",
    "held_after",
    "held_write",
    "model_specs",
    "native_await",
    "native_output",
    "native_specs",
    "placeholder",
    "repeat_note",
    "resolved",
    "shorten_json",
    "shorten_message",
    "task_status",
    "unknown_future",
    "with_earlier",
]

AWAIT_TOOL = "await_future"
"""The tool the runtime adds in async mode: wait for futures and read their values."""

AWAIT_SPEC: dict[str, Any] = {
    "name": AWAIT_TOOL,
    "description": "Wait for futures and return their values.",
    "parameters": {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "string"}}}},
}

ASYNC_INSTRUCTIONS = (
    'A tool result may be a placeholder like {"future": "fut_1", "status": "pending"}: the call is still '
    'running. Pass "fut_1" (or "fut_1.field"), alone or inside a text, as an argument and the runtime fills '
    f"in its value. Never invent a value or repeat a pending call. Call {AWAIT_TOOL} only when you must see "
    "a value to decide what to do, never just to pass it on."
)
"""Shown to the model in async mode only: a few lines that explain placeholders (77 tokens
for Qwen2.5's tokenizer; 96 before they were shortened)."""

ANSWER_NOW = (
    "Your last calls repeated earlier ones. Do not call a tool: answer my request now, in plain text."
)
"""Sent, with ``tool_choice`` none, after a step made only of repeats (a profile with
``answer_repeats``): without it a small model that may call no tool writes its next call as
text instead of answering."""

SETTLED_PROMPT = (
    "Calls that were still running when you answered have finished. Their results: {results}\n"
    "If they change your answer, give the corrected answer; otherwise repeat it."
)
"""The user message of a framework's revision run (``{results}``: the runtime's delivery text)."""

EARLIER = "resolved_earlier"
"""Key under which a tool message carries values of earlier calls, delivered with it."""

MAX_ERROR_CHARS = 2000
"""How much of an error message the model reads (an exception's text or an echoed tool name
can be megabytes, and every later prompt would carry it; ``call.error`` keeps it whole)."""


# -- values -------------------------------------------------------------------------


def error_json(error: CallError) -> dict[str, Any]:
    """A failure as the model reads it, with at most :data:`MAX_ERROR_CHARS` of its message
    (about that many: see :func:`shorten_message`)."""
    return {"error": {"type": error.kind.value, "message": shorten_message(error.message)}}


def _cut_marker(total: int, unit: str) -> str:
    return f"... [truncated: {total:,} {unit} in all]"


def shorten_message(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` if it fits in ``limit`` characters, else a shorter form the model can still read.

    A message that ends with a JSON object or array (an upstream MCP server's error, after
    ``"t raised UpstreamToolError: "``) is shortened inside its values (:func:`shorten_json`),
    so it stays valid JSON; any other text is cut at ``limit`` with a marker.
    """
    if len(text) <= limit:
        return text
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        start = min(starts)
        try:
            value = json.loads(text[start:])
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict | list):
            return text[:start] + shorten_json(value, max(limit - start, 200))
    return text[:limit] + _cut_marker(len(text), "characters")


_STRING_CAPS = (1000, 400, 160, 60, 20)
_ITEM_CAPS = (50, 20, 8, 3, 1)


def shorten_json(value: Any, limit: int) -> str:
    """``value`` as JSON text of about ``limit`` characters at most, still valid JSON.

    Long strings are cut with a marker (``"abc... [truncated: 9,000 characters in all]"``),
    long arrays keep their first items and a marker string, objects their first keys and a
    ``"..."`` key. What is kept shrinks step by step until the text fits; a value too wide
    to fit even at the last step (thousands of keys) comes back longer than ``limit``.
    """
    text = dumps(value)
    if len(text) <= limit:
        return text
    for strings, items in zip(_STRING_CAPS, _ITEM_CAPS, strict=True):
        text = dumps(_shorten_value(value, strings, items))
        if len(text) <= limit:
            return text
    return text


def _shorten_value(value: Any, strings: int, items: int) -> Any:
    # recursive: the value came from json.loads, whose own recursion bounded its depth
    if isinstance(value, str):
        return value if len(value) <= strings else value[:strings] + _cut_marker(len(value), "characters")
    if isinstance(value, list):
        kept = [_shorten_value(v, strings, items) for v in value[:items]]
        if len(value) > items:
            kept.append(_cut_marker(len(value), "items"))
        return kept
    if isinstance(value, dict):
        out = {
            str(k): _shorten_value(v, strings, items)
            for k, v in itertools.islice(value.items(), max(items, 8))
        }
        if len(value) > len(out):
            out["..."] = _cut_marker(len(value), "keys")
        return out
    return value


# -- future objects --------------------------------------------------------------------


def placeholder(fid: str, output_example: Any = None) -> dict[str, Any]:
    """What the model receives at once for a call in async mode; with the tool's example
    output, the references to its fields (``fut_3.price``) the model may pass on."""
    out: dict[str, Any] = {"future": fid, "status": "pending"}
    if isinstance(output_example, Mapping) and output_example:
        out["fields"] = _mirror(output_example, fid)
    return out


def task_status(fid: str, output_example: Any = None) -> str:
    """The ``statusMessage`` of an MCP task that runs a call (the task id is the future id):
    what a task-aware client may show the model instead of a placeholder."""
    refs = ""
    if isinstance(output_example, Mapping) and output_example:
        refs = f" (or its fields: {dumps(_mirror(output_example, fid))})"
    return (
        f"running as future {fid}: later calls may take {fid!r}{refs} as an argument without "
        "waiting; this task's result is its value"
    )


def _mirror(example: Any, path: str) -> Any:
    if isinstance(example, Mapping):
        return {str(k): _mirror(v, f"{path}.{k}") for k, v in example.items()}
    return path


def resolved(fid: str, value: Any) -> dict[str, Any]:
    """A resolved call, delivered."""
    return {"future": fid, "status": "resolved", "value": value}


def failed(fid: str | None, error: CallError) -> dict[str, Any]:
    """A failed call (``fid`` None: a failure that belongs to no future, a malformed await)."""
    return {"future": fid, "status": "failed", **error_json(error)}


def delivered(fid: str) -> dict[str, Any]:
    """A future whose value the model was already given: not given twice."""
    return {"future": fid, "status": "delivered", "note": "given earlier"}


def unknown_future(fid: str) -> dict[str, Any]:
    """A future id the session never issued (echoing a bounded part of what the model wrote)."""
    shown = fid if len(fid) <= 64 else f"{fid[:64]}..."
    error = CallError(ErrorKind.UNKNOWN_FUTURE, f"unknown future {shown!r} (not issued in this session)")
    return failed(shown, error)


def await_answer(items: list[dict[str, Any]]) -> str:
    """The ``await_future`` tool's answer: one future object, or an array of them."""
    return dumps(items[0] if len(items) == 1 else items)


def bad_await() -> str:
    """The answer to an ``await_future`` call without a usable ``ids`` list."""
    error = CallError(ErrorKind.INVALID_ARGUMENTS, f'{AWAIT_TOOL} needs {{"ids": ["{FUTURE_PREFIX}1", ...]}}')
    return dumps(failed(None, error))


def with_earlier(text: str, earlier: list[dict[str, Any]]) -> str:
    """A tool message's text with values of earlier calls added: under ``resolved_earlier``
    of an object; appended to an array of future objects (it stays one array)."""
    if not earlier:
        return text
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, list):
        return dumps([*body, *earlier])
    if not isinstance(body, dict):
        body = {"result": text if body is None else body}
    body.setdefault(EARLIER, []).extend(earlier)
    return dumps(body)


def held_write(waiting_for: list[str]) -> dict[str, Any]:
    """The tool message of a state-changing call that was not run because the model wrote it
    while results it had not seen were pending (``waiting_for``: their future ids in async
    mode, their tool names otherwise). Their values are delivered in the same step."""
    names = ", ".join(waiting_for)
    one = len(waiting_for) == 1
    some, given = ("that result", "It is") if one else ("those results", "They are")
    return {
        "status": "not_run",
        "waiting_for": list(waiting_for),
        "note": (
            f"not run yet: you wrote this call before you had seen {names}, so its arguments "
            f"could not use {some}. {given} given with this step's results. If the arguments are still "
            "right, emit the same call again to run it; otherwise emit it corrected."
        ),
    }


def held_after(name: str) -> dict[str, Any]:
    """The tool message of a call not run because it comes after a held ``name`` call of the
    same step and touches what that call would change (it must not run ahead of it)."""
    return {
        "status": "not_run",
        "note": (
            f"not run yet: it comes after your {name} call, which was not run, and uses what that "
            f"call would change. Emit it again after the {name} call."
        ),
    }


def repeat_note(original: str | None) -> str:
    """Said beside a call answered from an identical earlier call (``original``: its future
    id, in async mode) instead of running it again."""
    same = f" {original}" if original else ""
    return (
        f"this repeats an earlier identical call{same}, so it was not run again; do not repeat it: "
        "go on with the next step, or answer if the task is done"
    )


# -- tools --------------------------------------------------------------------------


def model_specs(tools: Iterable[Tool], mode: Mode | str) -> list[dict[str, Any]]:
    """Tools as the model sees them: in async mode references are allowed in every parameter
    and ``await_future`` is offered."""
    specs = [t.spec() for t in tools]
    if not Mode.of(mode).shows_futures:
        return specs
    return [*({**s, "parameters": widen_schema(s["parameters"])} for s in specs), AWAIT_SPEC]


# -- native async tools (OpenAI Responses, ``async: true``) -------------------------------

NATIVE_ASYNC_INSTRUCTIONS = (
    "Tools marked async run in the background: you get nothing back at once, and the result "
    "arrives later as the output of that same call. You need not wait for it: to pass a result "
    'on, write the call\'s call_id (or "call_id.field"), alone or inside a text, as an argument '
    "and the runtime fills in its value when it is ready. Never invent a value or repeat a pending "
    f'call. Call {AWAIT_TOOL} with {{"ids": [call_id, ...]}} only when you must see a value to '
    "decide what to do."
)
"""Shown instead of :data:`ASYNC_INSTRUCTIONS` when the endpoint runs tools natively async."""


def native_specs(specs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Async-mode tool specs with every tool but ``await_future`` marked ``"async": True``
    (an adapter with native async tools declares those ``async: true``)."""
    return [dict(s) if s.get("name") == AWAIT_TOOL else {**s, "async": True} for s in specs]


def native_output(body: Mapping[str, Any]) -> str:
    """The ``function_call_output`` of a call whose future object is ``body``
    (:func:`resolved` or :func:`failed`): its value as in sync mode, or ``{"error": ...}``."""
    if body.get("status") == "resolved":
        value = body.get("value")
        return value if isinstance(value, str) else dumps(value)
    return dumps({"error": body.get("error")})


def native_await(ready: Iterable[str], unknown: Iterable[str] = (), *, given: Iterable[str] = ()) -> str:
    """The ``await_future`` answer with native async tools: the results themselves follow as
    the outputs of their own calls (``ready``: their call ids; ``given``: calls whose output
    the model already has, not given twice; ``unknown``: ids that name no call)."""
    out: dict[str, Any] = {"ready": list(ready)}
    given, unknown = list(given), list(unknown)
    if out["ready"]:
        out["note"] = "their results follow as the outputs of those calls"
    if given:
        out["given_earlier"] = given
    if unknown:
        out["unknown"] = unknown
    return dumps(out)
