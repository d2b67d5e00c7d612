"""Sub-agents as tools: one agent's whole run is one call of another ("asynchronous thinking").

:meth:`asyncfc.Agent.as_tool` builds the tool; this module holds the machinery.

Calling the tool starts a fresh session of the sub-agent (its own model, tools, mode and
executor) on the task text and returns ``{"answer": <final text>}`` (with ``"calls"``, the
sub-agent's calls and outcomes, when asked for). In async mode the parent gets a future at
once, like for any slow call, and may pass ``fut_4.answer`` into a later call or await it.

**One ordering across levels.** The tool declares the *union* of its agent's read and write
labels as its own (a templated label such as ``files/{path}`` widens to its literal prefix
``files``; an unannotated tool makes it the root). The parent's scheduler therefore orders
the whole sub-agent run as one call: a parent call that writes ``outbox`` waits for an
earlier sub-agent that writes ``outbox`` (and the other way round), exactly as in the
synchronous run, while the sub-agent's own scheduler orders its calls among themselves.
Each sub-call runs once, in the sub-agent's session; so with honest annotations the final
state equals the synchronous run's at both levels. The price is granularity: a conflicting
parent call waits for the whole sub-agent run, not only for its conflicting call (see
docs/subagents.md for why we chose this over a hazard index shared across levels).

**Cancellation and failure.** Cancelling the parent's call (a timeout, the host, closing the
parent's session) cancels the sub-agent's run, which cancels its pending calls. A sub-agent
that fails (its model errs, it stops at its step limit) resolves the parent's call to an
error value the parent's model reads; the parent's other calls go on.

**Seeing it.** The sub-agent's trace is nested under the parent's call
(:meth:`asyncfc.trace.Trace.nest`): its model steps and calls appear on lanes named
``"fut_4 research › model"``, ``"fut_4 research › fut_1 lookup"``, and its token costs roll
up into the parent's :attr:`RunResult.usage <asyncfc.RunResult.usage>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ToolDefinitionError
from .scheduler import running_call
from .tools import ROOT, Tool

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["SubagentIncomplete", "agent_labels", "agent_tool", "covers"]

DEFAULT_DESCRIPTION = "Hand a self-contained task to a helper agent; returns its answer."


class SubagentIncomplete(RuntimeError):
    """Raised inside the tool when the sub-agent stopped without an answer (its step limit):
    the parent's call resolves to a ``tool_error`` the parent's model reads. Never raised at
    the developer."""


def _prefix(label: str) -> str:
    """A label template's literal part before its first field: ``files/{path}`` -> ``files``."""
    cut = label.find("{")
    return label if cut < 0 else label[:cut].rstrip("/")


def agent_labels(tools: Iterable[Tool]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The union of the tools' read and write labels, templates widened to their prefixes.

    A label that lies under another one of the same set is dropped (``outbox`` covers
    ``outbox/bob``); the root covers everything.
    """
    reads: set[str] = set()
    writes: set[str] = set()
    for t in tools:
        reads.update(_prefix(r) for r in t.reads)
        writes.update(_prefix(w) for w in t.writes)
    return _minimal(reads), _minimal(writes)


def _minimal(labels: set[str]) -> tuple[str, ...]:
    if ROOT in labels:
        return (ROOT,)
    ordered = sorted(labels, key=lambda x: (x.count("/"), x))
    kept: list[str] = []
    for label in ordered:
        if not any(label == k or label.startswith(k + "/") for k in kept):
            kept.append(label)
    return tuple(sorted(kept))


def covers(declared: Sequence[str], needed: Sequence[str]) -> list[str]:
    """The labels of ``needed`` that no label of ``declared`` equals or contains."""
    return [n for n in needed if not any(d in (ROOT, n) or n.startswith(d + "/") for d in declared)]


def _check_declared(name: str, kind: str, declared: Sequence[str], needed: Sequence[str]) -> None:
    missing = covers(declared, needed)
    if missing:
        raise ToolDefinitionError(
            f"agent tool {name!r}: {kind}={list(declared)!r} does not cover {missing!r}, which its "
            f"agent's tools {kind.rstrip('s')}; declare labels that contain them (or leave {kind} "
            "out to use the agent's own)"
        )


def _describe_call(call: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": call.id,
        "name": call.name,
        "arguments": call.resolved_arguments,
        "ran": call.ran,  # False: answered without running (a repeat, bad arguments, a failed dependency)
    }
    if call.error is not None:
        row["error"] = call.error.message
    else:
        row["value"] = call.value
    return row


def agent_tool(
    agent: Agent,
    *,
    name: str,
    description: str | None = None,
    reads: Sequence[str] | None = None,
    writes: Sequence[str] | None = None,
    argument: str = "task",
    include_calls: bool = False,
    timeout: float | None = None,
) -> Tool:
    """The tool behind :meth:`asyncfc.Agent.as_tool` (see there and the module docstring)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ToolDefinitionError(f"agent tool name must be an identifier, got {name!r}")
    if not argument.isidentifier():
        raise ToolDefinitionError(f"agent tool {name!r}: argument must be an identifier, got {argument!r}")
    own_reads, own_writes = agent_labels(agent.tools.values())
    if reads is not None:
        _check_declared(name, "reads", reads, own_reads)
        # reads and writes are separate sets: a write is checked against the declared writes
    if writes is not None:
        _check_declared(name, "writes", writes, own_writes)
    declared_reads = tuple(reads) if reads is not None else own_reads
    declared_writes = tuple(writes) if writes is not None else own_writes

    async def run_subagent(**kwargs: Any) -> dict[str, Any]:
        task = kwargs[argument]
        now_reads, now_writes = agent_labels(agent.tools.values())  # set_tools may have changed them
        missing = covers(declared_reads, now_reads) + covers(declared_writes, now_writes)
        if missing:
            raise ToolDefinitionError(
                f"the agent behind {name!r} now touches {missing!r}, outside the labels the tool "
                "declared when it was built; build the tool again with as_tool() after set_tools()"
            )
        session = agent.session()
        parent = running_call.get()
        if parent is not None:
            call, trace = parent
            trace.nest(session.trace, f"{call.id} {call.name}")
        async with session:  # a cancelled parent call cancels the run and its pending calls
            result = await session.run(str(task))
        if result.stop_reason != "answer":
            raise SubagentIncomplete(
                f"the sub-agent stopped at its step limit ({agent.max_steps}) without an answer"
            )
        out: dict[str, Any] = {"answer": result.text}
        if include_calls:
            out["calls"] = [_describe_call(c) for c in result.calls]
        return out

    parameters = {
        "type": "object",
        "properties": {argument: {"type": "string", "description": "the task, self-contained"}},
        "required": [argument],
        "additionalProperties": False,
    }
    run_subagent.__name__ = name
    run_subagent.__qualname__ = name
    return Tool(
        name=name,
        description=description or DEFAULT_DESCRIPTION,
        parameters=parameters,
        fn=run_subagent,
        reads=declared_reads,
        writes=declared_writes,
        output_example={"answer": "..."},
        timeout=timeout,
    )
