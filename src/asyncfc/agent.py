"""The agent loop: model step → calls → futures → delivery, in three modes.

* ``sync``: the classic loop; each call runs to completion before the next one.
* ``parallel``: classic parallel function calling; the calls of one model step run
  concurrently, the next step waits for all of them.
* ``async``: every call returns a placeholder at once and runs in the background as the
  scheduler allows; resolved values reach the model at turn boundaries (``rewrite`` or
  ``synthetic_await`` delivery) or through the ``await_future`` tool. Before a final
  answer is accepted, every pending future of the user turn is resolved and delivered
  and the model may revise its answer (a bounded number of times).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from .errors import CallError, ErrorKind, ModelError, SessionClosedError, ToolDefinitionError
from .executor import Executor
from .futures import AWAIT_TOOL, FUTURE_PREFIX, REFERENCE, Resolved, as_text, placeholder, widen_schema
from .models.base import Message, Model, ModelRequest, ModelResponse, ResponseDone, ToolCall, ToolCallReady
from .scheduler import Call, Mode, Scheduler
from .tools import Tool
from .trace import Trace

Delivery = Literal["rewrite", "synthetic_await"]
Revise = Literal["always", "when_needed"]

# Shown to the model in async mode only, after the system prompt. Tuned on Qwen2.5-Coder 1.5B
# (tests/test_llm.py): the one concrete example call is what makes a small model pass ids
# instead of inventing values; "never repeat a call" and the last sentence keep it from
# re-issuing a call that is still pending and make it stop. On the 1.5B this is reliable only
# together with a worked example in the conversation (asyncfc.demo.task_messages).
ASYNC_INSTRUCTIONS = (
    'Tool results may be placeholders like {"future": "fut_1", "status": "pending"}: the call is running '
    "and its value is not known yet. To use its value in a later call, write the placeholder id itself as "
    'the argument value, alone or inside a longer text (or "fut_1.name" for one field); the runtime fills '
    'in the real value. Example: a tool returned {"future": "fut_7", "status": "pending"}; to email that '
    'value you call send_email with {"to": "x@y.com", "body": "fut_7"}. Never invent a value and never '
    f"repeat a call: a pending call finishes by itself. Call {AWAIT_TOOL} only if you must see a value to "
    "decide what to do next. When the last step of the task has been called, reply with one plain sentence."
)

AWAIT_SPEC: dict[str, Any] = {
    "name": AWAIT_TOOL,
    "description": "Wait until the given futures are resolved and return their values.",
    "parameters": {
        "type": "object",
        "properties": {
            "ids": {"type": "array", "items": {"type": "string"}, "description": "future ids, e.g. fut_1"}
        },
        "required": ["ids"],
    },
}

_ID = re.compile(rf"^\s*{FUTURE_PREFIX}(\d+)\s*$")


@dataclass
class RunResult:
    """What one user turn produced."""

    text: str
    messages: list[Message]
    calls: list[Call]
    """The calls of this user turn, in program order."""
    trace: Trace
    wall_s: float
    model_s: float
    steps: int
    stop_reason: Literal["answer", "step_limit"] = "answer"
    notes: list[str] = field(default_factory=list)


class Agent:
    """A function-calling agent over any :class:`~asyncfc.models.Model` and a list of tools."""

    def __init__(
        self,
        model: Model,
        tools: Sequence[Tool],
        *,
        mode: Mode = "async",
        delivery: Delivery = "rewrite",
        system_prompt: str | None = None,
        async_instructions: str = ASYNC_INSTRUCTIONS,
        stream: bool = True,
        early_dispatch: bool = True,
        parallel_tool_calls: bool = True,
        max_steps: int = 20,
        max_revisions: int = 2,
        revise: Revise = "when_needed",
        default_timeout: float | None = 60.0,
        max_concurrency: int | None = None,
        max_session_concurrency: int | None = None,
        tool_limits: dict[str, int] | None = None,
        max_result_chars: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        """See the README's concept table; ``revise`` decides when a final answer given while
        futures were pending gets another model step: ``"always"``, or ``"when_needed"`` (a
        settled call failed, or the answer mentions a future id, i.e. it relied on a value
        the model had not seen)."""
        if mode not in ("sync", "parallel", "async"):
            raise ValueError(f"unknown mode {mode!r}")
        if delivery not in ("rewrite", "synthetic_await"):
            raise ValueError(f"unknown delivery {delivery!r}")
        if revise not in ("always", "when_needed"):
            raise ValueError(f"unknown revise policy {revise!r}")
        self.model = model
        self.tools: dict[str, Tool] = {}
        self.set_tools(tools)
        self.mode: Mode = mode
        self.delivery: Delivery = delivery
        self.system_prompt = system_prompt
        self.async_instructions = async_instructions
        self.stream = stream
        self.early_dispatch = early_dispatch
        self.parallel_tool_calls = parallel_tool_calls
        self.max_steps = max_steps
        self.max_revisions = max_revisions
        self.revise: Revise = revise
        self.max_session_concurrency = max_session_concurrency
        self.max_result_chars = max_result_chars
        self.executor = executor or Executor(
            default_timeout=default_timeout, max_concurrency=max_concurrency, tool_limits=tool_limits
        )

    def set_tools(self, tools: Sequence[Tool]) -> None:
        """Replace the tool list (e.g. functions revealed between user turns).

        Sessions see the change at their next model step; calls already emitted keep
        the tool they were emitted for.
        """
        names = [t.name for t in tools]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ToolDefinitionError(f"duplicate tool names: {sorted(dupes)}")
        if AWAIT_TOOL in names:
            raise ToolDefinitionError(f"{AWAIT_TOOL!r} is reserved for the runtime")
        self.tools.clear()  # the same dict object is shared with every session's scheduler
        self.tools.update((t.name, t) for t in tools)
        self._specs: list[dict[str, Any]] | None = None

    def tool_specs(self) -> list[dict[str, Any]]:
        """The tools as the model sees them in this mode (computed once)."""
        if self._specs is None:
            if self.mode != "async":
                self._specs = [t.spec() for t in self.tools.values()]
            else:
                widened = [
                    {**t.spec(), "parameters": widen_schema(t.parameters)} for t in self.tools.values()
                ]
                self._specs = [*widened, AWAIT_SPEC]
        return self._specs

    def session(self) -> Session:
        return Session(self)

    async def run(self, prompt: str | Sequence[Message]) -> RunResult:
        """One conversation, one user turn; pending calls are settled before returning."""
        async with self.session() as session:
            return await session.run(prompt)

    def run_sync(self, prompt: str | Sequence[Message]) -> RunResult:
        return asyncio.run(self.run(prompt))


class Session:
    """A conversation: history and futures live across user turns until it is closed."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.trace = Trace()
        self.messages: list[Message] = []
        self.scheduler = Scheduler(
            agent.tools, agent.executor, self.trace, agent.mode, max_concurrency=agent.max_session_concurrency
        )
        self.closed = False
        self.user_turns = 0
        self._tool_messages: dict[str, Message] = {}
        self._awaits = 0
        self._announced: list[tuple[ToolCall, Call]] = []
        """Calls dispatched early in the current step, as the stream announced them."""
        self._dispatched: dict[int, Call] = {}
        """The same calls by their position in the step's final response."""

    @property
    def calls(self) -> list[Call]:
        return self.scheduler.calls

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel whatever is still pending (each such call resolves to ``cancelled``)."""
        if not self.closed:
            self.closed = True
            await self.scheduler.cancel()

    # -- the loop -----------------------------------------------------------------

    async def run(self, prompt: str | Sequence[Message]) -> RunResult:
        """Run one user turn to its final answer."""
        if self.closed:
            raise SessionClosedError("this session is closed; start a new one with agent.session()")
        agent = self.agent
        self.user_turns += 1
        first_call = len(self.calls)
        new = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
        self.messages.extend(new)
        start = self.trace.now()
        model_s = 0.0
        revisions = 0
        notes: list[str] = []
        try:
            for step in range(1, agent.max_steps + 1):
                self._check_open()
                self._deliver_ready()
                t0 = self.trace.now()
                response = await self._model_step(step)
                model_s += self.trace.now() - t0
                notes.extend(response.notes)
                if response.tool_calls:
                    await self._answer_calls(response, step)
                    continue
                turn_calls = self.calls[first_call:]
                undelivered = [c for c in turn_calls if c.delivered_at is None]
                if undelivered:
                    await self._settle(undelivered)
                    if self._needs_revision(response.text, undelivered):
                        if revisions < agent.max_revisions and step < agent.max_steps:
                            revisions += 1
                            continue
                        notes.append(
                            "revision limit reached: last values delivered without another model step"
                        )
                return self._result(response.text, first_call, start, model_s, step, "answer", notes)
            await self._settle([c for c in self.calls[first_call:] if c.delivered_at is None])
            notes.append(f"step limit ({agent.max_steps}) reached without a final answer")
            return self._result("", first_call, start, model_s, agent.max_steps, "step_limit", notes)
        except BaseException:
            await self.close()
            raise

    def _needs_revision(self, text: str, settled: list[Call]) -> bool:
        if self.agent.revise == "always":
            return True
        return any(c.error is not None for c in settled) or REFERENCE.search(text) is not None

    def _result(
        self,
        text: str,
        first_call: int,
        start: float,
        model_s: float,
        steps: int,
        reason: Any,
        notes: list[str],
    ) -> RunResult:
        return RunResult(
            text=text,
            messages=list(self.messages),
            calls=self.calls[first_call:],
            trace=self.trace,
            wall_s=self.trace.now() - start,
            model_s=model_s,
            steps=steps,
            stop_reason=reason,
            notes=notes,
        )

    def _request(self) -> ModelRequest:
        agent = self.agent
        system = [
            p for p in (agent.system_prompt, agent.async_instructions if agent.mode == "async" else None) if p
        ]
        messages = list(self.messages)
        if system:
            if messages and messages[0].role == "system":
                messages[0] = Message("system", "\n\n".join([messages[0].content, *system]))
            else:
                messages.insert(0, Message("system", "\n\n".join(system)))
        return ModelRequest(
            messages=messages,
            tools=agent.tool_specs(),
            parallel_tool_calls=agent.parallel_tool_calls,
            stream=agent.stream,
        )

    async def _model_step(self, step: int) -> ModelResponse:
        """One model request; with early dispatch, calls start while the model is still decoding."""
        agent = self.agent
        request = self._request()
        early = agent.early_dispatch and agent.mode in ("async", "parallel")
        self._announced, self._dispatched = [], {}
        t0 = self.trace.now()
        response: ModelResponse | None = None
        try:
            async for event in agent.model.stream(request):
                if isinstance(event, ToolCallReady) and early and event.call.name != AWAIT_TOOL:
                    self._announced.append((event.call, self._submit(event.call, step)))
                elif isinstance(event, ResponseDone):
                    response = event.response
        except (ModelError, SessionClosedError):
            raise
        except Exception as exc:
            raise ModelError(f"model {agent.model.name!r} failed: {type(exc).__name__}: {exc}") from exc
        if response is None:
            raise ModelError(f"model {agent.model.name!r} ended its stream without a response")
        self.trace.span(
            f"step {step}",
            "model",
            "model",
            t0,
            self.trace.now(),
            calls=len(response.tool_calls),
            ttft_s=response.ttft_s,
            output_tokens=response.usage.output_tokens,
        )
        # pair early-dispatched calls with the response's calls before ids are made unique:
        # ids may be missing or repeated, so match the announced object (or its content), in order
        for i, tc in enumerate(response.tool_calls):
            key = (tc.id, tc.name, tc.arguments)
            j = next(
                (
                    j
                    for j, (a, _) in enumerate(self._announced)
                    if a is tc or (a.id, a.name, a.arguments) == key
                ),
                None,
            )
            if j is not None:
                self._dispatched[i] = self._announced.pop(j)[1]
        seen: set[str] = set()
        for i, call in enumerate(response.tool_calls):
            if not call.id or call.id in seen:  # ids must be unique for the protocol round trip
                call.id = f"call_{self.user_turns}_{step}_{i}"
            seen.add(call.id)
            if i in self._dispatched:
                self._dispatched[i].call_id = call.id
        self.messages.append(Message("assistant", response.text, list(response.tool_calls)))
        return response

    def _check_open(self) -> None:
        """A session closed while a run was in flight must not ask the model or start calls again."""
        if self.closed:
            raise SessionClosedError("the session was closed during the run")

    def _submit(self, tc: ToolCall, step: int) -> Call:
        self._check_open()
        return self.scheduler.submit(tc.id, tc.name, tc.arguments, user_turn=self.user_turns, step=step)

    async def _answer_calls(self, response: ModelResponse, step: int) -> None:
        """Append one tool message per call, in the order the model wrote them."""
        mode = self.agent.mode
        calls: list[tuple[ToolCall, Call | None]] = []
        for i, tc in enumerate(response.tool_calls):
            if tc.name == AWAIT_TOOL and mode == "async":
                calls.append((tc, None))
                continue
            call = self._dispatched.get(i)
            if call is None:
                call = self._submit(tc, step)
            if mode == "sync":
                await call.future.wait()
            calls.append((tc, call))
        if mode == "parallel":
            await self.scheduler.wait_all([c for _, c in calls if c is not None])
        for tc, call in calls:
            if call is None:
                content = await self._await_tool(tc)
            elif call.done:
                content = self._deliver_text(call)
            else:
                content = json.dumps(placeholder(call.id, self.agent.tools[call.name].output_example))
            msg = Message("tool", content, tool_call_id=tc.id)
            self.messages.append(msg)
            if call is not None:
                self._tool_messages[call.id] = msg

    async def _await_tool(self, tc: ToolCall) -> str:
        """The ``await_future`` tool: block until the named futures resolve, return their values."""
        try:
            args = json.loads(tc.arguments or "{}")
        except ValueError:
            args = None
        raw = args.get("ids", args.get("id")) if isinstance(args, dict) else None
        ids = [raw] if isinstance(raw, str) else raw
        if not isinstance(ids, list) or not ids:
            err = CallError(ErrorKind.INVALID_ARGUMENTS, f'{AWAIT_TOOL} needs {{"ids": ["fut_1", ...]}}')
            return json.dumps(err.to_json())
        t0 = self.trace.now()
        out: list[dict[str, Any]] = []
        for fid in ids:
            m = _ID.match(str(fid))
            future = self.scheduler.lookup(int(m.group(1))) if m else None
            if future is None:
                out.append(CallError(ErrorKind.UNKNOWN_FUTURE, f"unknown future {fid!r}").to_json())
                continue
            call = self.calls[future.seq - 1]
            await future.wait()
            out.append(self._resolution(call).to_json())
            call.delivered_at = call.delivered_at if call.delivered_at is not None else self.trace.now()
            msg = self._tool_messages.get(call.id)
            if msg is not None and self.agent.delivery == "rewrite":
                msg.content = self._deliver_text(call)
        self.trace.span(AWAIT_TOOL, "await", "model", t0, self.trace.now(), ids=ids)
        return json.dumps(out[0] if len(out) == 1 else out, default=str)

    def _resolution(self, call: Call) -> Resolved:
        value = call.value
        if self.agent.max_result_chars is not None and call.error is None:
            text = as_text(value)
            if len(text) > self.agent.max_result_chars:
                value = (
                    text[: self.agent.max_result_chars] + f"... [truncated: {len(text)} characters in all]"
                )
        return Resolved(call.id, value, call.error)

    def _deliver_text(self, call: Call) -> str:
        """The text of a resolved call for the model; marks it delivered (exactly once)."""
        call.deliveries += 1
        if call.delivered_at is None:
            call.delivered_at = self.trace.now()
        res = self._resolution(call)
        if res.error is not None:
            return json.dumps(res.error.to_json())
        if self.agent.mode != "async":
            return as_text(res.value)
        return json.dumps(res.to_json(), default=str)

    def _deliver_ready(self) -> None:
        """Turn boundary: hand every resolved, undelivered value to the model."""
        ready = [c for c in self.calls if c.done and c.delivered_at is None and c.id in self._tool_messages]
        if not ready:
            return
        if self.agent.delivery == "rewrite":
            for call in ready:
                self._tool_messages[call.id].content = self._deliver_text(call)
            return
        self._awaits += 1
        call_id = f"await_{self._awaits}"
        ids = [c.id for c in ready]
        self.messages.append(
            Message("assistant", "", [ToolCall(call_id, AWAIT_TOOL, json.dumps({"ids": ids}))])
        )
        values = [json.loads(self._deliver_text(c)) for c in ready]
        self.messages.append(Message("tool", json.dumps(values, default=str), tool_call_id=call_id))

    async def _settle(self, calls: list[Call]) -> None:
        """Wait for the given calls and deliver them (before a final answer is accepted)."""
        await self.scheduler.wait_all(calls)
        self._deliver_ready()
        for call in calls:  # calls that never got a tool message (cannot happen normally)
            if call.delivered_at is None:
                self._deliver_text(call)
