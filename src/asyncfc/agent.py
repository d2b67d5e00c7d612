"""asyncfc's own agent loop: model step → runtime → delivery, in three modes.

* ``sync``: the classic loop; each call runs to completion before the next one.
* ``parallel``: classic parallel function calling; the calls of one model step run
  concurrently, the next step waits for all of them.
* ``async``: every call returns a placeholder unless it finishes within its grace (the
  grace policy's choice, :mod:`asyncfc.grace`),
  and runs in the background as the scheduler allows; resolved values reach the model at
  turn boundaries (``append``, ``rewrite`` or ``synthetic_await`` delivery) or through the
  ``await_future`` tool. Before a final answer is accepted, every pending future of the
  user turn is resolved and delivered and the model may revise its answer (bounded).

The agent is one host of :class:`~asyncfc.runtime.Runtime`; it owns the transcript, so it
can choose where a delivered value goes.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from .errors import (
    ConfigurationError,
    ModelError,
    SessionBusyError,
    SessionClosedError,
    UsageError,
    check_choice,
    check_number,
    describe,
)
from .executors import Executor, ExecutorKind, make_executor
from .futures import dumps, holds_reference, references_in
from .grace import Grace, GraceOption, grace_policy
from .mode import Mode
from .model_text import (
    ANSWER_NOW,
    ASYNC_INSTRUCTIONS,
    AWAIT_TOOL,
    NATIVE_ASYNC_INSTRUCTIONS,
    held_after,
    held_write,
    model_specs,
    native_await,
    native_output,
    native_specs,
    with_earlier,
)
from .models.base import (
    Message,
    Model,
    ModelProfile,
    ModelRequest,
    ModelResponse,
    ResponseDone,
    ToolCall,
    ToolCallReady,
    Usage,
)
from .revise import POLICIES, Revise, revision_needed
from .runtime import (
    Runtime,
    check_options,
    tool_table,
)
from .scheduler import Call, Scheduler
from .subagent import agent_tool
from .tools import ROOT, Tool, labels_conflict
from .trace import Trace

Delivery = Literal["append", "rewrite", "synthetic_await"]

__all__ = ["Agent", "Delivery", "RunResult", "Session"]


@dataclass
class _Held:
    """A call not run: a state-changing one the model wrote before seeing ``blockers``, or
    (``after``) a later call of the same step that touches what such a call would change."""

    blockers: list[Call]
    after: str = ""


def _labels(tool: Tool, arguments: str) -> tuple[set[str], set[str]] | None:
    """A call's read and write labels from its arguments (an unresolved field widens them)."""
    try:
        parsed: Any = json.loads(arguments or "{}")
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    return tool.labels(parsed, holds_reference)


def _conflict(a: tuple[set[str], set[str]], b: tuple[set[str], set[str]]) -> bool:
    (ra, wa), (rb, wb) = a, b
    return any(labels_conflict(x, y) for x in wa for y in (*rb, *wb)) or any(
        labels_conflict(x, y) for x in ra for y in wb
    )


def _repeats_only(calls: Sequence[tuple[ToolCall, Call | _Held | None]]) -> bool:
    """Whether every call of a step was answered from an identical earlier call."""
    return bool(calls) and all(isinstance(c, Call) and c.repeat_of is not None for _, c in calls)


def _by_call_id(arguments: str, ids: dict[str, str]) -> str:
    """Native async tools: the model names a pending result by its call's ``call_id``; each
    such name (``call_7``, ``call_7.price``) becomes the call's future id for the scheduler."""
    if not ids or not arguments:
        return arguments
    names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({names})(?![\w-])", lambda m: ids[m.group(1)], arguments)


def _canonical(arguments: str) -> str:
    """One text per arguments object, whatever its key order and spacing."""
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except (ValueError, RecursionError):
        return arguments


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
    usage: Usage = field(default_factory=Usage)
    """Prompt, cached and output tokens, prefill and decode time of this user turn's model steps."""
    held: list[ToolCall] = field(default_factory=list)
    """State-changing calls not run because the model wrote them before seeing results they
    could depend on (``hold_blind_writes``); each ran only if the model emitted it again."""


class Agent:
    """A function-calling agent over any :class:`~asyncfc.models.Model` and a list of tools.

    ``async with Agent(...) as agent`` (or :meth:`close`) releases its executor's workers.
    """

    def __init__(
        self,
        model: Model,
        tools: Sequence[Tool],
        *,
        mode: Mode | str = Mode.ASYNC,
        delivery: Delivery = "append",
        grace: GraceOption = "auto",
        grace_s: float | None = None,
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
        executor: Executor | ExecutorKind | None = None,
        hold_blind_writes: bool | Literal["retract"] | None = None,
    ) -> None:
        """See docs/options.md; ``revise`` decides when a final answer given while
        futures were pending gets another model step once their values are delivered:
        ``"when_needed"`` (a settled call failed, or the answer mentions a future id, i.e. it
        relied on a value the model had not seen), ``"always"``, or ``"never"`` (the answer
        stands; the values are in the transcript). The rule is :func:`asyncfc.revise.revision_needed`.
        ``hold_blind_writes`` (default: ``"retract"`` in async mode, off otherwise) holds a
        state-changing call the model wrote before seeing results it could depend on, until
        they are delivered and the model emits it again (see docs/options.md)."""
        self.mode = Mode.of(mode)
        check_choice("delivery", delivery, ("append", "rewrite", "synthetic_await"))
        check_choice("revise policy", revise, POLICIES)
        check_options(grace_s, max_result_chars, max_session_concurrency, "max_session_concurrency")
        check_number("max_steps", max_steps, 1, integer=True)
        check_number("max_revisions", max_revisions, 0, integer=True)
        if hold_blind_writes not in (None, True, False, "retract"):
            raise ConfigurationError(
                "hold_blind_writes must be True, False, 'retract' or None ('retract' in async mode), "
                f"not {hold_blind_writes!r}"
            )
        self.model = model
        self.tools: dict[str, Tool] = {}
        self.set_tools(tools)
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
        self.hold_blind_writes: bool | Literal["retract"] = (
            ("retract" if self.mode.shows_futures else False)
            if hold_blind_writes is None
            else hold_blind_writes
            if hold_blind_writes == "retract"
            else bool(hold_blind_writes)
        )
        """Whether a state-changing call written before results it could depend on were seen is
        held: ``"retract"`` (the default in async mode) drops it from the model's step and shows
        the values as an ``await_future`` answer; True answers it with a note."""
        self.profile: ModelProfile = getattr(model, "profile", None) or ModelProfile()
        """What this model needs (instructions, a worked example, answering repeats); see ModelProfile."""
        self.grace_policy: Grace = grace_policy(
            grace, grace_s, step_s=self.profile.step_s, prefill_token_s=self.profile.prefill_token_s
        )
        """One policy for every session: what it learns (tool latencies, the model's cost)
        carries over to the next conversation."""
        self._owns_executor = not isinstance(executor, Executor)
        self.executor = make_executor(
            executor or "threads",
            default_timeout=default_timeout,
            max_concurrency=max_concurrency,
            tool_limits=tool_limits,
        )

    def set_tools(self, tools: Sequence[Tool]) -> None:
        """Replace the tool list (e.g. functions revealed between user turns).

        Sessions see the change at their next model step; calls already emitted keep
        the tool they were emitted for.
        """
        table = tool_table(tools)
        self.tools.clear()  # the same dict object is shared with every session's runtime
        self.tools.update(table)
        self._specs: dict[Mode, list[dict[str, Any]]] = {}

    def as_tool(
        self,
        *,
        name: str,
        description: str | None = None,
        reads: Sequence[str] | None = None,
        writes: Sequence[str] | None = None,
        argument: str = "task",
        include_calls: bool = False,
        timeout: float | None = None,
    ) -> Tool:
        """This agent as a tool of another agent: one string argument (``task``), result
        ``{"answer": ...}`` (plus ``"calls"`` with ``include_calls``). Each call runs a fresh
        session of this agent; in async mode the caller gets a future it can pass on
        (``fut_4.answer``). Its labels are the union of this agent's tools' labels (templates
        widened to their prefixes) unless ``reads``/``writes`` are given, which must cover
        them. ``timeout`` bounds the whole run (default: the caller's executor's). See
        docs/subagents.md and :mod:`asyncfc.subagent`."""
        return agent_tool(
            self,
            name=name,
            description=description,
            reads=reads,
            writes=writes,
            argument=argument,
            include_calls=include_calls,
            timeout=timeout,
        )

    def tool_specs(self, mode: Mode | None = None) -> list[dict[str, Any]]:
        """The tools as the model sees them in ``mode`` (default: the agent's; computed once
        per tool list)."""
        mode = mode or self.mode
        specs = self._specs.get(mode)
        if specs is None:
            specs = self._specs[mode] = model_specs(self.tools.values(), mode)
        return specs

    def shown_mode(self) -> Mode:
        """The mode a new session shows the model: the agent's, except that async mode is
        shown as parallel when the grace policy expects no call to be slow enough for a
        placeholder to pay (:meth:`asyncfc.grace.Grace.futures_pay`): calls still run as in
        async mode, each answered with its value, and the model reads no text about futures."""
        return self.grace_policy.shown_mode(self.mode, self.tools)

    def session(self) -> Session:
        return Session(self)

    async def run(self, prompt: str | Sequence[Message]) -> RunResult:
        """One conversation, one user turn; pending calls are settled before returning."""
        async with self.session() as session:
            return await session.run(prompt)

    def run_sync(self, prompt: str | Sequence[Message]) -> RunResult:
        """:meth:`run` in an event loop of its own.

        The model's connections belong to that loop, so they are closed with it: nothing is
        left open when this returns, and the next call opens new ones.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop running in this thread: run_sync starts its own
        else:
            raise UsageError(
                "Agent.run_sync() cannot run inside a running event loop (async code, Jupyter); "
                "use `await agent.run(...)` there instead"
            )

        async def run_and_release() -> RunResult:
            try:
                return await self.run(prompt)
            finally:
                await self._release_model()

        return asyncio.run(run_and_release())

    async def _release_model(self) -> None:
        release = getattr(self.model, "aclose", None)
        if release is not None:
            await release()

    async def close(self) -> None:
        """Release the workers of the executor this agent created (a shared one is left alone)
        and the model's HTTP connections (its next request opens new ones)."""
        if self._owns_executor:
            await self.executor.close()
        await self._release_model()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Session:
    """A conversation: history and futures live across user turns until it is closed."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.trace = Trace()
        self._native = bool(getattr(agent.model, "native_async_tools", False)) and agent.mode.shows_futures
        """The model's endpoint runs tools natively async (OpenAI Responses ``async: true``):
        a pending call gets no output until its value is ready."""
        native_text = self._native and agent.async_instructions is ASYNC_INSTRUCTIONS
        self.runtime = Runtime(
            agent.tools,
            mode=agent.mode if self._native else agent.shown_mode(),
            executor=agent.executor,
            grace=agent.grace_policy,
            max_result_chars=agent.max_result_chars,
            max_concurrency=agent.max_session_concurrency,
            instructions=NATIVE_ASYNC_INSTRUCTIONS if native_text else agent.async_instructions,
            trace=self.trace,
        )
        self._future_of: dict[str, str] = {}
        """Native async tools: each call's future id by its call_id (how the model names it)."""
        self._no_output: dict[int, str] = {}
        """Native async tools: calls left without an output so far (seq -> call_id)."""
        self.messages: list[Message] = []
        self.user_turns = 0
        self._sent = 0
        """How many messages of the transcript the model has already been sent."""
        self._tool_messages: dict[int, Message] = {}
        """The tool message of each call, by sequence number."""
        self._awaits = 0
        self._running = False
        self._turn_calls: dict[tuple[str, str], Call] = {}
        """This user turn's calls by name and arguments (to answer repeats, see ModelProfile)."""
        self._answer_now = False
        """The last step only repeated earlier calls: ask the next one for an answer, without tools."""
        self._announced: list[tuple[ToolCall, Call | _Held]] = []
        """Calls dispatched early in the current step, as the stream announced them."""
        self._dispatched: dict[int, Call | _Held] = {}
        """The same calls by their position in the step's final response."""
        self._turn_first = 0
        """Index in ``calls`` of this user turn's first call."""
        self._held_keys: set[tuple[str, str]] = set()
        """This user turn's held calls by name and arguments: emitted again, they run."""
        self._held: list[ToolCall] = []
        """This user turn's held calls, in order."""
        self._held_in_step: tuple[int, list[tuple[str, tuple[set[str], set[str]]]]] = (0, [])
        """The step and the calls held in it, with their labels: a later call of that step that
        conflicts with one is held too, so nothing runs ahead of a call it must follow."""

    @property
    def calls(self) -> list[Call]:
        return self.runtime.calls

    @property
    def scheduler(self) -> Scheduler:
        return self.runtime.scheduler

    @property
    def closed(self) -> bool:
        return self.runtime.closed

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel whatever is still pending (each such call resolves to ``cancelled``)."""
        await self.runtime.aclose()

    # -- the loop -----------------------------------------------------------------

    async def run(self, prompt: str | Sequence[Message]) -> RunResult:
        """Run one user turn to its final answer. One at a time: a second concurrent call
        raises :class:`SessionBusyError` (the first one is not disturbed)."""
        if self.closed:
            raise SessionClosedError("this session is closed; start a new one with agent.session()")
        if self._running:
            raise SessionBusyError("this session is already running a user turn; await it first")
        self._running = True
        try:
            return await self._run(prompt)
        except BaseException:
            await self.close()
            raise
        finally:
            self._running = False

    async def _run(self, prompt: str | Sequence[Message]) -> RunResult:
        agent = self.agent
        self.user_turns += 1
        self._turn_calls = {}
        self._answer_now = False
        first_call = len(self.calls)
        self._turn_first = first_call
        self._held_keys, self._held = set(), []
        new = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
        self.messages.extend(new)
        start = self.trace.now()
        model_s = 0.0
        revisions = 0
        notes: list[str] = []
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
                if revision_needed(response.text, undelivered, agent.revise):
                    if revisions < agent.max_revisions and step < agent.max_steps:
                        revisions += 1
                        continue
                    notes.append("revision limit reached: last values delivered without another model step")
            return self._result(response.text, first_call, start, model_s, step, "answer", notes)
        await self._settle([c for c in self.calls[first_call:] if c.delivered_at is None])
        notes.append(f"step limit ({agent.max_steps}) reached without a final answer")
        return self._result("", first_call, start, model_s, agent.max_steps, "step_limit", notes)

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
            usage=self.trace.model_cost(since=start),
            held=list(self._held),
        )

    def _request(self) -> ModelRequest:
        request = self.next_request()
        self._sent = len(self.messages)
        return request

    def next_request(self) -> ModelRequest:
        """The request the next model step would send (system message, the profile's example,
        the conversation, the tools): for inspection and for counting prompt tokens."""
        agent = self.agent
        profile = agent.profile
        system = [p for p in (agent.system_prompt, profile.instructions, self.runtime.instructions) if p]
        history = self.messages
        skip = 1 if history and history[0].role == "system" else 0
        if skip:
            system.insert(0, history[0].content)
        messages: list[Message] = []
        if system:
            messages.append(Message("system", "\n\n".join(system)))
        if profile.example is not None:  # a fixed prefix: the provider's cache keeps it
            messages.extend(profile.example(self.runtime.mode.shows_futures))
        messages.extend(history[1:] if skip else history)  # list copies run at memcpy speed; no shifts
        if self._answer_now:  # this step only: the history keeps no trace of it
            messages.append(Message("user", ANSWER_NOW))
        specs = agent.tool_specs(self.runtime.mode)
        if self._native:
            specs = native_specs(specs)
        return ModelRequest(
            messages=messages,
            tools=specs,  # also when answering now: dropped tools would change the cached prefix
            tool_choice="none" if self._answer_now else "auto",
            parallel_tool_calls=agent.parallel_tool_calls,
            stream=agent.stream,
        )

    async def _model_step(self, step: int) -> ModelResponse:
        """One model request; with early dispatch, calls start while the model is still decoding."""
        agent = self.agent
        request = self._request()
        early = agent.early_dispatch and self.runtime.mode.dispatches_early
        self._announced, self._dispatched = [], {}
        t0 = self.trace.now()
        response: ModelResponse | None = None
        try:
            async for event in agent.model.stream(request):
                if isinstance(event, ToolCallReady) and early and event.call.name != AWAIT_TOOL:
                    self._announced.append((event.call, self._take(event.call, step)))
                elif isinstance(event, ResponseDone):
                    response = event.response
        except (ModelError, SessionClosedError):
            raise
        except Exception as exc:
            raise ModelError(f"model {agent.model.name!r} failed: {describe(exc)}") from exc
        if response is None:
            raise ModelError(f"model {agent.model.name!r} ended its stream without a response")
        response.usage.estimate_timing(response.ttft_s, response.duration_s)  # no-op when timed already
        self.trace.model_step(step, t0, self.trace.now(), response)
        # pair early-dispatched calls with the response's calls before ids are made unique:
        # ids may be missing or repeated, so match the announced object (or its content), in order
        announced = deque(self._announced)  # the match is almost always the first: O(1) each
        for i, tc in enumerate(response.tool_calls):
            if announced and announced[0][0] is tc:
                j: int | None = 0  # the usual case, without a generator per call
            else:
                key = (tc.id, tc.name, tc.arguments)
                j = next(
                    (
                        j
                        for j, (a, _) in enumerate(announced)
                        if a is tc or (a.id, a.name, a.arguments) == key
                    ),
                    None,
                )
            if j is not None:
                self._dispatched[i] = announced[j][1]
                del announced[j]
        self._announced = list(announced)
        seen: set[str] = set()
        for i, call in enumerate(response.tool_calls):
            if not call.id or call.id in seen:  # ids must be unique for the protocol round trip
                call.id = f"call_{self.user_turns}_{step}_{i}"
            seen.add(call.id)
            taken = self._dispatched.get(i)
            if isinstance(taken, Call):
                taken.tool_call_id = call.id
        self.messages.append(Message("assistant", response.text, list(response.tool_calls)))
        return response

    def _check_open(self) -> None:
        """A session closed while a run was in flight must not ask the model or start calls again."""
        if self.closed:
            raise SessionClosedError("the session was closed during the run")

    def _take(self, tc: ToolCall, step: int) -> Call | _Held:
        """Submit a call, or hold it when it changes state and was written blind."""
        if self._native and self._future_of:  # call_id references as future ids, from here on
            named = _by_call_id(tc.arguments, self._future_of)
            tc = tc if named == tc.arguments else ToolCall(tc.id, tc.name, named)
        if not self.agent.hold_blind_writes:
            return self._submit(tc, step)
        if self.agent.profile.answer_repeats and (tc.name, _canonical(tc.arguments)) in self._turn_calls:
            return self._submit(tc, step)  # answered from the identical earlier call: nothing runs
        if self._held_in_step[0] != step:
            self._held_in_step = (step, [])
        held_now = self._held_in_step[1]
        tool = self.agent.tools.get(tc.name)
        labels = _labels(tool, tc.arguments) if tool is not None and not tool.pure else None
        after = ""
        if labels is not None:
            after = next((name for name, other in held_now if _conflict(other, labels)), "")
        blockers = [] if after else self._blind_to(tc, step)
        if not after and not blockers:
            return self._submit(tc, step)
        if blockers:
            self._held_keys.add((tc.name, _canonical(tc.arguments)))
        self._held.append(tc)
        held_now.append((tc.name, labels or ({ROOT}, {ROOT})))
        now = self.trace.now()
        waiting = [c.id for c in blockers]
        self.trace.span(tc.name, "held", "model", now, now, waiting_for=waiting, after=after)
        return _Held(blockers, after)

    def _blind_to(self, tc: ToolCall, step: int) -> list[Call]:
        """The pending results a state-changing call may depend on but was written without.

        They are the calls of this user turn's earlier steps whose values the model has not
        been given yet (in sync mode it would have seen them before this step; a call of the
        same step it could not have seen in any mode), except repeats (their original
        counts) and write-only calls (a tool that writes and reads nothing returns an
        acknowledgement, not a value to copy). Empty for a tool that does not write, an
        unknown tool, a call that passes a future on (the model uses futures for the values
        it has not seen; the runtime fills them in), and a call that repeats one held
        earlier in the turn (emitting it again confirms it).
        """
        tool = self.agent.tools.get(tc.name)
        if tool is None or not tool.writes:
            return []
        if (tc.name, _canonical(tc.arguments)) in self._held_keys:
            return []
        calls = self.calls
        pending = [
            c
            for c in calls[self._turn_first :]
            if c.delivered_at is None and c.step < step and c.repeat_of is None
        ]
        if not pending:
            return []
        try:
            parsed: Any = json.loads(tc.arguments or "{}")
        except (ValueError, RecursionError):
            return []  # malformed: the runtime answers it with an error, it changes nothing
        if references_in(tc.arguments, parsed):
            return []
        return self._value_calls(pending)

    def _value_calls(self, calls: Sequence[Call] | None = None) -> list[Call]:
        """Of ``calls`` (default: this user turn's undelivered ones), those whose result is a
        value the model could copy: every call but repeats and write-only ones."""
        if calls is None:
            calls = [c for c in self.calls[self._turn_first :] if c.delivered_at is None]
        out = []
        for c in calls:
            tool = self.agent.tools.get(c.name)
            if c.repeat_of is None and not (tool is not None and tool.writes and not tool.reads):
                out.append(c)
        return out

    def _submit(self, tc: ToolCall, step: int) -> Call:
        self._check_open()
        if self.agent.profile.answer_repeats:
            key = (tc.name, _canonical(tc.arguments))
            earlier = self._turn_calls.get(key)
            if earlier is not None:
                return self.runtime.repeat(earlier, tool_call_id=tc.id, user_turn=self.user_turns, step=step)
        call = self.runtime.submit(
            tc.name, tc.arguments, tool_call_id=tc.id, user_turn=self.user_turns, step=step
        )
        if self._native and tc.id:
            self._future_of[tc.id] = call.id
        if self.agent.profile.answer_repeats and call.error is None:
            self._turn_calls[key] = call
        return call

    async def _answer_calls(self, response: ModelResponse, step: int) -> None:
        """Append one tool message per call, in the order the model wrote them."""
        futures = self.runtime.mode.shows_futures
        calls: list[tuple[ToolCall, Call | _Held | None]] = []
        for i, tc in enumerate(response.tool_calls):
            if tc.name == AWAIT_TOOL and futures:
                calls.append((tc, None))
                continue
            # in sync mode the runtime runs them one after another, in this order
            calls.append((tc, self._dispatched.get(i) or self._take(tc, step)))
        blockers: dict[Call, None] = {}
        held_msg: Message | None = None
        retracted: list[ToolCall] = []
        for tc, answered in calls:
            if answered is None and self._native:
                await self._native_await(tc)
                continue
            if answered is None:
                content = await self.runtime.await_futures(tc.arguments)
            elif isinstance(answered, _Held):
                blockers.update(dict.fromkeys(answered.blockers))
                if self.agent.hold_blind_writes == "retract":
                    retracted.append(tc)
                    continue
                if answered.after:
                    content = dumps(held_after(answered.after))
                else:
                    content = dumps(held_write([c.id for c in answered.blockers]))
            else:
                content = await self.runtime.answer(answered)
                if self._native:
                    if answered.delivered_at is None:  # pending: its output goes out when ready
                        self._no_output[answered.seq] = tc.id
                        continue
                    content = native_output(self.runtime.deliver_json(answered))
            msg = Message("tool", content, tool_call_id=tc.id)
            self.messages.append(msg)
            if isinstance(answered, Call):
                self._tool_messages[answered.seq] = msg
            elif isinstance(answered, _Held) and held_msg is None:
                held_msg = msg
        if retracted:  # the step keeps only the calls that ran: the model writes the others anew
            self._retract(retracted)
        if blockers:  # the held calls' promise: the values come with this step, so the model
            # sees every lookup of the turn (this step's too) before it writes the call again
            waits = [*blockers, *(c for c in self._value_calls() if c not in blockers)]
            await self.runtime.wait_all(waits)
            self._deliver_ready(into=held_msg)
        # a step made only of repeats is a loop: the next step may call no tool (tool_choice none) and
        # gets ANSWER_NOW, so it answers
        self._answer_now = _repeats_only(calls) and self.agent.profile.answer_repeats
        for _, orphan in self._announced:  # dispatched early but missing from the final response
            if isinstance(orphan, Call):
                self.runtime.hold(orphan)

    def _retract(self, held: list[ToolCall]) -> None:
        """Drop held calls from the step's assistant message (the whole message when nothing
        else is left in it): the model sees the values next, as if it had awaited them."""
        gone = {id(tc) for tc in held}
        for i in range(len(self.messages) - 1, -1, -1):
            m = self.messages[i]
            if m.role == "assistant" and any(id(tc) in gone for tc in m.tool_calls):
                m.tool_calls = [tc for tc in m.tool_calls if id(tc) not in gone]
                if not m.tool_calls and not m.content:
                    del self.messages[i]
                return

    def _deliver_ready(self, into: Message | None = None) -> None:
        """Turn boundary: hand every resolved, undelivered value to the model.

        Values whose own placeholder the model has not been sent yet replace it, in every
        policy (no cached prefix is touched). The others follow the delivery policy:
        ``rewrite`` edits the earlier placeholder, ``synthetic_await`` appends an await call
        and its result, ``append`` adds them to the newest unsent tool message (or, when
        there is none, appends an await call and its result). ``into``: an unsent tool message
        that takes the appended values instead of the newest one (a held call's).
        """
        ready = self.runtime.take_ready()
        if self._native:
            ready = self._native_outputs(ready)
        if not ready:
            return
        unsent = [m for m in self.messages[self._sent :] if m.role == "tool"]
        unsent_ids = {id(m) for m in unsent}  # by identity, in O(1): thousands may be ready at once
        later: list[Call] = []
        for call in ready:
            msg = self._tool_messages.get(call.seq)
            if msg is not None and (self.agent.delivery == "rewrite" or id(msg) in unsent_ids):
                msg.content = dumps(self.runtime.deliver_json(call))
            else:
                later.append(call)
        if not later:
            return
        values = [self.runtime.deliver_json(c) for c in later]
        if self.agent.delivery == "append" and unsent:
            target = into if into is not None and id(into) in unsent_ids else unsent[-1]
            target.content = with_earlier(target.content, values)
            return
        self._awaits += 1
        call_id = f"await_{self._awaits}"
        ids = [c.id for c in later]
        self.messages.append(
            Message("assistant", "", [ToolCall(call_id, AWAIT_TOOL, json.dumps({"ids": ids}))])
        )
        self.messages.append(Message("tool", dumps(values), tool_call_id=call_id))

    def _native_outputs(self, ready: list[Call]) -> list[Call]:
        """Native async tools: append each ready call left without an output as its
        ``function_call_output`` (the original call_id), at the end; returns the other calls."""
        rest: list[Call] = []
        for call in ready:
            call_id = self._no_output.pop(call.seq, None)
            if call_id is None:
                rest.append(call)
            else:
                content = native_output(self.runtime.deliver_json(call))
                self.messages.append(Message("tool", content, tool_call_id=call_id))
        return rest

    async def _native_await(self, tc: ToolCall) -> None:
        """``await_future`` with native async tools: wait for the named calls, answer with
        their call ids, then append their outputs after it (each value once, in its own call's output)."""
        try:
            args = json.loads(_by_call_id(tc.arguments, self._future_of) or "{}")
        except (ValueError, RecursionError):
            args = None
        raw = args.get("ids", args.get("id")) if isinstance(args, dict) else None
        ids = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        by_future = {f: c for c, f in self._future_of.items()}
        known = [str(i) for i in ids if str(i) in by_future]
        for fid in known:
            await self.calls[int(fid.removeprefix("fut_")) - 1].future.wait()
        unknown = [str(i) for i in ids if str(i) not in by_future] or ([] if ids else [tc.arguments])
        given = [f for f in known if self.calls[int(f.removeprefix("fut_")) - 1].delivered_at is not None]
        ready = [by_future[f] for f in known if f not in given]
        text = native_await(ready, unknown, given=[by_future[f] for f in given])
        self.messages.append(Message("tool", text, tool_call_id=tc.id))
        self._deliver_ready()

    async def _settle(self, calls: list[Call]) -> None:
        """Wait for the given calls and deliver them (before a final answer is accepted)."""
        await self.runtime.wait_all(calls)
        self._deliver_ready()
