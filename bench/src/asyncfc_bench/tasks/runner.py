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
from asyncfc_bench.tasks.measure import RecordingModel, call_duration, turn_ideal
from asyncfc_bench.tasks.world import Latency, World

__all__ = [
    "Config",
    "EndpointUnreachable",
    "ModelFor",
    "Run",
    "SYSTEM_PROMPT",
    "default_delivery",
    "run_suite",
    "run_task",
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
) -> Run:
    """One task in one mode through one session, judged by the state it leaves."""
    world = World(latency=config.latency())
    tools = world.tools()
    by_name = {t.name: t for t in tools}
    recorder = RecordingModel(model)
    options = config.options(mode)
    if executor is not None:
        options["executor"] = executor
    agent = Agent(recorder, tools, **options)
    out = Run(task.name, task.shape, mode, run)
    calls: list[Call] = []
    answers: list[str] = []
    try:
        async with agent.session() as session:
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
    if not out.reason:
        verdict = judge(task.check, Evidence(world, calls, answers, out.stop_reasons))
        out.passed, out.reason = verdict.passed, verdict.reason
    return out


async def warm_up(model: Model, mode: ModeName, config: Config) -> None:
    """One short untimed request with the agent's own prefix (system prompt, tools) for ``mode``.

    ``model`` should stop after a token or so; whatever it answers is discarded.
    """
    agent = Agent(
        model, World(latency=Latency(time_scale=0.0)).tools(), **{**config.options(mode), "max_steps": 1}
    )
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
    runs: list[Run] = []
    executor = ThreadExecutor(default_timeout=60.0)  # one for all runs: one per agent would leak pools
    try:
        for rep in range(config.runs):
            for mode in config.modes:
                if warm_model is not None:
                    await warm_up(warm_model, mode, config)
                for task in tasks:
                    run = await run_task(
                        task, mode, model_for(task, mode, rep), config, run=rep, executor=executor
                    )
                    runs.append(run)
                    if on_run is not None:
                        on_run(run)
    finally:
        await executor.close()
    return runs
