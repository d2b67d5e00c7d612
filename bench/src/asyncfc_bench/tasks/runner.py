"""Run the task suite: every task in every mode, timed, measured and judged.

Each run gets a fresh :class:`~.world.World` and one session over all its user turns.
Modes run one after the other, each after the same untimed warm-up request (the agent's
own system prompt and tools, one output token), so every mode starts with the server's
prefix cache holding its fixed prefix; tasks then run one at a time, so timings are clean.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncfc.agent import Agent
from asyncfc.errors import ModelError
from asyncfc.executors import Executor, ThreadExecutor
from asyncfc.mode import ModeName
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import Model
from asyncfc.scheduler import Call
from asyncfc_bench.tasks.catalog import Task
from asyncfc_bench.tasks.judge import Evidence, judge
from asyncfc_bench.tasks.measure import RecordingModel, blind_writes, call_duration, turn_ideal
from asyncfc_bench.tasks.script import SolutionModel
from asyncfc_bench.tasks.world import Latency, World

__all__ = [
    "Config",
    "EndpointUnreachable",
    "ModelFor",
    "Run",
    "SYSTEM_PROMPT",
    "default_delivery",
    "run_suite",
    "run_sweep",
    "run_task",
    "solution_flow",
    "warm_up",
]

SYSTEM_PROMPT = (
    "You are a helpful assistant with access to tools. Use them to do what the user asks; "
    "never make up a value a tool can give you. When the request is done, answer briefly."
)
"""What a user would write for a general assistant (the same in every mode)."""

ModelFor = Callable[[Task, ModeName, int], Model]
"""The model for one run (task, mode, repetition): the shared real model, or a script in tests."""


class EndpointUnreachable(ModelError):
    """The model's endpoint cannot be reached (the CLI exits with 3)."""


def default_delivery() -> str:
    """The agent's default delivery policy (whatever asyncfc currently ships)."""
    return str(inspect.signature(Agent.__init__).parameters["delivery"].default)


@dataclass(frozen=True)
class Config:
    modes: tuple[ModeName, ...] = ("sync", "async")
    runs: int = 1
    lookup_latency_s: float | None = None
    """Latency of every lookup tool (None: the realistic profile, 0.2-3 s)."""
    time_scale: float = 1.0
    """Multiplies every tool latency (tests run the suite 1000x faster)."""
    delivery: str | None = None
    """Async delivery policy (None: the agent's default)."""
    max_steps: int = 10
    system_prompt: str = SYSTEM_PROMPT
    agent_options: Mapping[str, Any] = field(default_factory=dict)

    def latency(self) -> Latency:
        return Latency(lookup_s=self.lookup_latency_s, time_scale=self.time_scale)

    def options(self, mode: ModeName) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": mode, "system_prompt": self.system_prompt, "max_steps": self.max_steps}
        if self.delivery is not None:
            out["delivery"] = self.delivery
        return {**out, **self.agent_options}


@dataclass
class Run:
    """One task in one mode (one repetition): verdict, timings, model cost, the ideal."""

    task: str
    shape: str
    mode: str
    run: int
    passed: bool = False
    reason: str = ""
    wall_s: float = 0.0
    model_s: float = 0.0
    tool_s: float = 0.0
    """Sum of the durations of the calls that ran."""
    ideal_s: float = 0.0
    """Zero-overhead asynchronous time from this run's measured steps and calls."""
    steps: int = 0
    calls: int = 0
    await_steps: int = 0
    references: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    output_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    stop_reasons: list[str] = field(default_factory=list)
    answer: str = ""
    trace_calls: list[str] = field(default_factory=list)
    """One line per call: name(arguments) -> result or error (what the judge saw)."""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Runtime consistency problems (a call never resolved or never delivered)."""
    blind_writes: list[str] = field(default_factory=list)
    """State-changing calls that ran with a value the model had never seen (see
    :func:`~asyncfc_bench.tasks.measure.blind_writes`)."""
    held: int = 0
    """Calls the agent held because they were written blind (``hold_blind_writes``)."""
    held_calls: list[str] = field(default_factory=list)
    """Those calls as the model wrote them: name(arguments)."""
    lookup_latency_s: float | None = None
    """The lookup latency of this run (None: the realistic profile)."""
    futures_shown: bool = False
    """The model was shown futures (async mode, unless the grace policy found that no tool
    is slow enough for a placeholder to pay: see ``Agent.shown_mode``)."""

    @property
    def uncached_prompt_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.cached_prompt_tokens)

    def row(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["uncached_prompt_tokens"] = self.uncached_prompt_tokens
        for key in ("wall_s", "model_s", "tool_s", "ideal_s", "prefill_s", "decode_s"):
            out[key] = round(out[key], 4)
        return out


def _line(call: Call) -> str:
    outcome = f"error {call.error.kind.value}: {call.error.message}" if call.error else repr(call.value)
    return f"{call.id} {call.name}({call.raw_arguments}) -> {outcome}"[:300]


def _consistency(calls: Sequence[Call]) -> list[str]:
    out = []
    for c in calls:
        if not c.done:
            out.append(f"{c.id} ({c.name}) never resolved")
        elif c.delivered_at is None:
            out.append(f"{c.id} ({c.name}) was never delivered to the model")
    return out


async def run_task(
    task: Task,
    mode: ModeName,
    model: Model,
    config: Config,
    *,
    run: int = 0,
    executor: Executor | None = None,
    flow: frozenset[tuple[str, str]] | None = None,
) -> Run:
    """One task in one mode through one session, judged by the state it leaves.

    ``flow``: the task's ground truth for blind writes (default: :func:`solution_flow`)."""
    world = World(latency=config.latency())
    tools = world.tools()
    by_name = {t.name: t for t in tools}
    recorder = RecordingModel(model)
    options = config.options(mode)
    if executor is not None:
        options["executor"] = executor
    agent = Agent(recorder, tools, **options)
    out = Run(task.name, task.shape, mode, run, lookup_latency_s=config.lookup_latency_s)
    calls: list[Call] = []
    answers: list[str] = []
    try:
        async with agent.session() as session:
            out.futures_shown = session.runtime.mode.shows_futures
            for text in task.turns:
                first = len(recorder.steps)
                result = await session.run(text)
                out.wall_s += result.wall_s
                out.model_s += result.model_s
                out.steps += result.steps
                out.stop_reasons.append(str(result.stop_reason))
                out.notes.extend(result.notes)
                answers.append(result.text)
                calls.extend(result.calls)
                out.held += len(result.held)
                out.held_calls += [f"{h.name}({h.arguments})"[:300] for h in result.held]
                out.ideal_s += turn_ideal(recorder.steps[first:], result.calls, by_name, task.decides_on)
            out.problems = _consistency(calls)
    except ModelError as exc:
        if "cannot reach" in str(exc) or "Connection" in str(exc):
            raise EndpointUnreachable(str(exc)) from exc
        out.notes.append(f"model error: {exc}")
        out.reason = f"model error: {exc}"[:300]
    finally:
        if executor is None:
            await agent.close()
    tool_calls = [c for c in calls if c.name != AWAIT_TOOL]
    out.calls = len(tool_calls)
    out.tool_s = sum(call_duration(c) for c in tool_calls)
    out.errors = sum(c.error is not None for c in tool_calls)
    out.references = sum(1 for c in tool_calls if c.deps)
    out.await_steps = sum(1 for s in recorder.steps if s.awaited)
    out.prompt_tokens = sum(s.input_tokens for s in recorder.steps)
    out.cached_prompt_tokens = sum(s.cached_input_tokens for s in recorder.steps)
    out.output_tokens = sum(s.output_tokens for s in recorder.steps)
    out.prefill_s = sum(s.prefill_s for s in recorder.steps)
    out.decode_s = sum(s.decode_s for s in recorder.steps)
    out.answer = (answers[-1] if answers else "")[:500]
    out.trace_calls = [_line(c) for c in calls]
    if flow is None:
        flow = await solution_flow(task)
    out.blind_writes = blind_writes(calls, by_name, flow)
    if not out.reason:
        verdict = judge(task.check, Evidence(world, calls, answers, out.stop_reasons, list(task.turns)))
        out.passed, out.reason = verdict.passed, verdict.reason
    return out


_FLOWS: dict[str, frozenset[tuple[str, str]]] = {}


async def solution_flow(task: Task) -> frozenset[tuple[str, str]]:
    """The task's ground truth for blind writes: pairs ``(write tool, source tool)`` where the
    reference solution's write uses the source's result, found by playing the solution in
    async mode with every call answered by a placeholder (so each value it uses is passed on
    as a future: the write's references, followed through the calls they depended on), plus
    every write paired with the tools the task decides on. Computed once per task."""
    cached = _FLOWS.get(task.name)
    if cached is not None:
        return cached
    world = World(latency=Latency(time_scale=0.001))
    tools = world.tools()
    writes = {t.name for t in tools if t.writes}
    agent = Agent(
        SolutionModel(task.solution()),
        tools,
        mode="async",
        grace_s=0.0,
        hold_blind_writes=False,
        max_steps=20,
    )
    calls: list[Call] = []
    async with agent, agent.session() as session:
        for text in task.turns:
            calls.extend((await session.run(text)).calls)
    by_seq = {c.seq: c for c in calls}
    pairs: set[tuple[str, str]] = set()
    for w in calls:
        if w.name not in writes:
            continue
        pairs.update((w.name, name) for name in task.decides_on)
        todo, seen = list(w.deps), set()
        while todo:
            seq = todo.pop()
            if seq in seen or seq not in by_seq:
                continue
            seen.add(seq)
            pairs.add((w.name, by_seq[seq].name))
            todo.extend(by_seq[seq].deps)
    _FLOWS[task.name] = frozen = frozenset(pairs)
    return frozen


async def warm_up(model: Model, mode: ModeName, config: Config) -> None:
    """One short untimed request with the agent's own prefix (system prompt, tools) for ``mode``.

    ``model`` should stop after a token or so (no call is made); whatever it answers is
    discarded. Its tools declare the run's latencies, so the prefix is the one the runs
    show (futures or not: see ``Agent.shown_mode``).
    """
    agent = Agent(model, World(latency=config.latency()).tools(), **{**config.options(mode), "max_steps": 1})
    try:
        await agent.run("Hello")
    except ModelError as exc:
        if "cannot reach" in str(exc) or "Connection" in str(exc):
            raise EndpointUnreachable(str(exc)) from exc
    finally:
        await agent.close()


async def run_suite(
    tasks: Sequence[Task],
    config: Config,
    model_for: ModelFor,
    *,
    warm_model: Model | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> list[Run]:
    """Every task in every mode, ``config.runs`` times: per repetition, mode after mode."""
    return await run_sweep(
        tasks, config, [config.lookup_latency_s], model_for, warm_model=warm_model, on_run=on_run
    )


async def run_sweep(
    tasks: Sequence[Task],
    config: Config,
    latencies: Sequence[float | None],
    model_for: ModelFor,
    *,
    warm_model: Model | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> list[Run]:
    """:func:`run_suite` at each lookup latency: per repetition, latency after latency, and
    at each latency mode after mode, the order of the modes alternating from one latency to
    the next, so slow drifts of the machine fall on every mode alike."""
    runs: list[Run] = []
    flows = {task.name: await solution_flow(task) for task in tasks}
    executor = ThreadExecutor(default_timeout=60.0)  # one for all runs: one per agent would leak pools
    try:
        block = 0
        for rep in range(config.runs):
            for latency in latencies:
                at = dataclasses.replace(config, lookup_latency_s=latency)
                alternate = len(latencies) > 1 and block % 2 == 1  # one latency: the order as given
                modes = tuple(reversed(config.modes)) if alternate else config.modes
                block += 1
                for mode in modes:
                    if warm_model is not None:
                        await warm_up(warm_model, mode, at)
                    for task in tasks:
                        run = await run_task(
                            task,
                            mode,
                            model_for(task, mode, rep),
                            at,
                            run=rep,
                            executor=executor,
                            flow=flows[task.name],
                        )
                        runs.append(run)
                        if on_run is not None:
                            on_run(run)
    finally:
        await executor.close()
    return runs
