"""Run BFCL multi-turn entries in each mode, judge them officially, and bound them from above.

For every entry and mode: fresh backend instances, tools that sleep an injected delay
before running the (instant) backend method, one :class:`~asyncfc.agent.Session` over all
user turns, and the official ``multi_turn_checker`` on the calls that actually ran. Modes
run back to back on the same entry, so drift (machine load, timer jitter) hits all modes
alike; entries run one at a time, so timings are clean.

The *ideal* per entry comes from the workload definition, not from measurements: the
replay plan's steps (decode time as the replay model simulates it), the injected delays,
and the dependencies between calls: data flow (references) plus read/write hazards in
program order. A call whose value the model must *read* (an ``await`` use) gates the
decoding of its step. Three more bounds split the savings: zero-overhead sync (no
overlap at all), overlap-only (calls serialized in program order but overlapping
decode), and zero-overhead parallel function calling.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncfc.agent import Agent
from asyncfc.errors import ErrorKind, ModelError
from asyncfc.executors import Executor, ThreadExecutor
from asyncfc.mode import ModeName
from asyncfc.models.base import Message, Model
from asyncfc.scheduler import Call
from asyncfc.testing.scripted import tokens_of
from asyncfc.tools import Tool
from asyncfc.trace import Trace
from asyncfc_bench.bfcl.annotations import ANNOTATIONS, Access
from asyncfc_bench.bfcl.backends import instances_for, make_tools
from asyncfc_bench.bfcl.calls import to_call_string
from asyncfc_bench.bfcl.data import Entry, load_category
from asyncfc_bench.bfcl.example import example_entry, with_example, worked_example
from asyncfc_bench.bfcl.replay import (
    AWAIT_TOOL,
    FC,
    Plan,
    ReplayModel,
    build_plan,
    decode_seconds,
    hazard,
    labels_of,
    sleep_until,
)

__all__ = [
    "BoundCall",
    "BoundStep",
    "Bounds",
    "CHECK_PREFIX",
    "Config",
    "EndpointUnreachable",
    "Experiment",
    "MODES",
    "Run",
    "SYSTEM_PROMPT",
    "check_endpoint",
    "checker_entry",
    "coarse_annotations",
    "critical_path",
    "decoded",
    "delayed",
    "entry_bounds",
    "entry_tools",
    "judge",
    "make_model",
    "real_model",
    "rows",
    "run_entry",
    "run_experiment",
    "serialized",
    "trajectory_of",
    "turn_steps",
]

MODES: tuple[ModeName, ...] = ("sync", "parallel", "async")

SYSTEM_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible "
    "functions. Based on the question, make one or more function/tool calls to achieve the purpose. "
    "At each turn, try your best to complete the tasks requested by the user within the current turn: "
    "keep calling tools until you have fulfilled the request, then answer briefly. If none of the "
    "functions can be used, or parameters are missing, say so instead of calling a tool."
)
"""The idea of BFCL's multi-turn system prompt, for function-calling models."""

CHECK_PREFIX = "asyncfc_bfcl_"


class EndpointUnreachable(ModelError):
    """The real model's endpoint cannot be reached (the CLI exits with 3)."""


def coarse_annotations(table: Mapping[str, Access] = ANNOTATIONS) -> dict[str, Access]:
    """One label per class (``fs/cwd`` -> ``fs``): what the runtime would do without a state tree.

    Pure functions stay pure and read-only ones stay read-only, so only the tree's depth is lost.
    """

    def top(labels: Sequence[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(label.split("/", 1)[0] for label in labels))

    return {name: Access(top(a.reads), top(a.writes)) for name, a in table.items()}


@dataclass(frozen=True)
class Config:
    """One experiment: delays, time scale, simulated decode, modes and the model."""

    delay_s: float = 5.0
    delay_profile: Mapping[str, float] = field(default_factory=dict)
    """Per-function delay in seconds (unscaled); functions not listed take ``delay_s``."""
    time_scale: float = 1.0
    """Multiplies injected delays and simulated decode times (0.01 runs 100x faster)."""
    modes: tuple[ModeName, ...] = MODES
    fc: FC = "parallel"
    ttft_s: float = 0.5
    tokens_per_s: float = 60.0
    coarse: bool = False
    max_steps: int = 20
    repeat: int = 1
    model: str = "replay"
    """``replay``, ``local`` (the embedded model, started if needed) or a model name at ``base_url``."""
    base_url: str | None = None
    api_key: str | None = None
    agent_options: Mapping[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for :class:`~asyncfc.agent.Agent` (e.g. a revision policy)."""
    grace: float | str = "auto"
    """``"auto"`` (the cost-aware grace policy) or a fixed window in nominal seconds
    (scaled by ``time_scale`` like the delays it is measured against)."""
    example: bool = True
    """A real model gets a worked example from another entry (:mod:`.example`)."""

    @property
    def replay(self) -> bool:
        return self.model == "replay"

    def delay_of(self, name: str) -> float:
        """Seconds a call of ``name`` sleeps (scaled)."""
        return float(self.delay_profile.get(name, self.delay_s)) * self.time_scale

    def decode_of(self, tokens: int) -> float:
        """Seconds the replay model decodes a response of ``tokens`` output tokens (scaled)."""
        return decode_seconds(tokens, self.ttft_s, self.tokens_per_s) * self.time_scale

    def annotations(self) -> dict[str, Access]:
        return coarse_annotations() if self.coarse else dict(ANNOTATIONS)


# --------------------------------------------------------------------------- tools


def delayed(tool: Tool, seconds: float) -> Tool:
    """The tool, sleeping ``seconds`` before running its backend method inline on the event loop.

    Inline because the backends are instant and not thread-safe: running them in worker
    threads would only add noise and races.
    """
    inner = tool.fn

    async def run(**kwargs: Any) -> Any:
        if seconds > 0:
            await sleep_until(time.perf_counter() + seconds)
        # a copy: backends keep argument lists and mutate them later, which would rewrite
        # the call's recorded arguments (and so the trajectory the checker judges)
        return inner(**copy.deepcopy(kwargs))

    run.__name__ = tool.name
    run.__doc__ = getattr(inner, "__doc__", None)
    return dataclasses.replace(tool, fn=run)


def entry_tools(instances: Mapping[str, Any], config: Config) -> list[Tool]:
    """Every function of the entry's instances as a tool with the configured labels and delay."""
    return [delayed(t, config.delay_of(t.name)) for t in make_tools(instances, config.annotations())]


# --------------------------------------------------------------------------- bounds


@dataclass(frozen=True)
class BoundCall:
    duration_s: float
    emit_offset_s: float
    deps: tuple[int, ...] = ()
    """Program-order indices (within the user turn) of calls that must finish first."""


@dataclass(frozen=True)
class BoundStep:
    decode_s: float
    calls: tuple[BoundCall, ...] = ()
    gates: tuple[int, ...] = ()
    """Calls whose values the model must read before it can start decoding this step."""


def critical_path(steps: Sequence[BoundStep], final_decode_s: float) -> float:
    """Completion time of a zero-overhead asynchronous runtime for one user turn.

    Exactly :func:`asyncfc_bench.ideal.ideal_time` when no step is gated; a gated step
    starts decoding when the values it needs have been produced.
    """
    t = 0.0
    ends: list[float] = []
    for step in steps:
        t = max([t, *(ends[g] for g in step.gates)])
        for call in step.calls:
            start = max([t + call.emit_offset_s, *(ends[d] for d in call.deps)])
            ends.append(start + call.duration_s)
        t += step.decode_s
    return max([t + final_decode_s, *ends])


@dataclass(frozen=True)
class Bounds:
    """Per-entry bounds in scaled seconds (summed over user turns)."""

    ideal_s: float
    overlap_only_s: float
    sync_s: float
    parallel_s: float


def turn_steps(plan: Plan, turn: int, tools: Mapping[str, Tool], config: Config) -> list[BoundStep]:
    """The plan's steps of one user turn with durations, emission offsets and dependencies."""
    order = plan.turn_calls(turn)
    local = {index: pos for pos, index in enumerate(order)}
    labels = [labels_of(tools[plan.calls[i].name], plan.calls[i].arguments) for i in order]
    steps: list[BoundStep] = []
    for step in plan.steps[turn]:
        offset = config.ttft_s
        calls: list[BoundCall] = []
        gates: set[int] = set()
        tokens = 0
        for index in step:
            call = plan.calls[index]
            pos = local[index]
            deps = {pos2 for pos2 in range(pos) if hazard(labels[pos2], labels[pos])}
            for use in call.uses:
                if use.producer in local:
                    (deps if use.kind == "ref" else gates).add(local[use.producer])
            tokens += call.tokens
            offset += call.tokens / config.tokens_per_s
            duration = config.delay_of(call.name) if call.valid else 0.0  # refused before it runs
            calls.append(BoundCall(duration, offset * config.time_scale, tuple(sorted(deps))))
        steps.append(BoundStep(config.decode_of(tokens), tuple(calls), tuple(sorted(gates))))
    return steps


def serialized(steps: Sequence[BoundStep]) -> list[BoundStep]:
    """The same steps with every call also waiting for the one before it (no inter-call parallelism)."""
    out: list[BoundStep] = []
    n = 0
    for step in steps:
        calls = []
        for call in step.calls:
            calls.append(dataclasses.replace(call, deps=tuple(sorted({*call.deps, n - 1} - {-1}))))
            n += 1
        out.append(dataclasses.replace(step, calls=tuple(calls)))
    return out


def entry_bounds(plan: Plan, tools: Mapping[str, Tool], config: Config) -> Bounds:
    """Ideal, overlap-only, zero-overhead sync and zero-overhead parallel times of an entry."""
    final = config.decode_of(tokens_of(plan.final_text))
    ideal = overlap = sync = parallel = 0.0
    for turn in range(len(plan.steps)):
        steps = turn_steps(plan, turn, tools, config)
        ideal += critical_path(steps, final)
        overlap += critical_path(serialized(steps), final)
        sync += sum(s.decode_s + sum(c.duration_s for c in s.calls) for s in steps) + final
        for s in steps:
            parallel += max([s.decode_s, *(c.emit_offset_s + c.duration_s for c in s.calls)])
        parallel += final
    return Bounds(ideal, overlap, sync, parallel)


# --------------------------------------------------------------------------- judging


_checks = itertools.count()


def checker_entry(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "initial_config": entry.initial_config,
        "involved_classes": list(entry.involved_classes),
    }


def judge(entry: Entry, trajectory: list[list[list[str]]]) -> tuple[bool, str | None]:
    """The official ``multi_turn_checker`` verdict: (valid, error type).

    Each check gets a fresh model name (the official executor caches backend instances in
    its module globals by name) and those cached instances are dropped afterwards.
    """
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    name = f"{CHECK_PREFIX}{os.getpid()}_{next(_checks)}"
    try:
        verdict = multi_turn_checker(
            trajectory, entry.ground_truth, checker_entry(entry), entry.category, name
        )
    except Exception as exc:  # a malformed trajectory is a failed entry, not a crashed run
        return False, f"checker_error: {type(exc).__name__}: {exc}"
    finally:
        cache = vars(multi_turn_utils)
        for key in [k for k in cache if k.startswith(name + "_")]:
            del cache[key]
    valid = bool(verdict.get("valid"))
    return valid, None if valid else str(verdict.get("error_type", "invalid"))


# --------------------------------------------------------------------------- running


@dataclass
class Run:
    """One entry in one mode (one repetition)."""

    entry: str
    category: str
    mode: ModeName
    rep: int
    wall_s: float = 0.0
    model_s: float = 0.0
    tool_s: float = 0.0
    call_union_s: float = 0.0
    """Length of the union of call intervals: tool_s minus this is time saved by calls overlapping."""
    steps: int = 0
    calls: int = 0
    await_steps: int = 0
    references: int = 0
    """Calls that took an earlier call's result by reference (async mode)."""
    revisions: int = 0
    valid: bool = False
    error_type: str | None = None
    plan_match: bool | None = None
    """Sync replay only: the model steps were exactly the plan's (the ideal's premise)."""
    notes: list[str] = field(default_factory=list)
    trajectory: list[list[list[str]]] = field(default_factory=list)
    trace: Trace | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The JSON-able record (no trace)."""
        out = dataclasses.asdict(self)
        out.pop("trace")
        return out


def decoded(call: Call) -> dict[str, Any] | None:
    """The arguments to judge a call by, or None if it is not part of the trajectory.

    Calls that ran count with the arguments they ran with. So does a call the runtime
    refused for invalid arguments: BFCL judges what the model decoded and executes it
    itself (the official harness has no schema check; entry 173's ground truth holds such
    a call), and a refused call changed no state here. Await calls are not tools; calls
    of unknown tools or with failed dependencies never had concrete arguments.
    """
    if call.name == AWAIT_TOOL:
        return None
    if call.ran:
        return call.resolved_arguments
    if call.error is not None and call.error.kind is ErrorKind.INVALID_ARGUMENTS:
        return call.resolved_arguments if call.resolved_arguments is not None else call.arguments
    return None


def trajectory_of(calls: Sequence[Call]) -> list[list[str]]:
    """BFCL call strings of one user turn's calls, grouped by model step."""
    steps: dict[int, list[str]] = {}
    for call in calls:
        arguments = decoded(call)
        if arguments is not None:
            steps.setdefault(call.step, []).append(to_call_string(call.name, arguments))
    return [steps[s] for s in sorted(steps)]


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _turn_shapes(messages: Sequence[Message]) -> list[tuple[int, int]]:
    """Per user turn: (responses calling await_future, text answers) in the transcript."""
    shapes: list[list[int]] = []
    previous_user = False
    for m in messages:
        if m.role == "user":
            if not previous_user:
                shapes.append([0, 0])
            previous_user = True
            continue
        previous_user = False
        if m.role != "assistant" or not shapes:
            continue
        if any(c.name == AWAIT_TOOL for c in m.tool_calls):
            shapes[-1][0] += 1
        elif not m.tool_calls:
            shapes[-1][1] += 1
    return [(a, t) for a, t in shapes]


def _step_sizes(calls: Sequence[Call]) -> list[int]:
    sizes: dict[int, int] = {}
    for c in calls:
        sizes[c.step] = sizes.get(c.step, 0) + 1
    return [sizes[s] for s in sorted(sizes)]


def make_model(plan: Plan, config: Config, shared: Model | None) -> Model:
    if config.replay:
        return ReplayModel(
            plan, ttft_s=config.ttft_s, tokens_per_s=config.tokens_per_s, time_scale=config.time_scale
        )
    assert shared is not None
    return shared


def real_model(config: Config, **options: Any) -> Model:
    """The real model of ``config``: the embedded one, or an OpenAI-compatible endpoint's."""
    if config.model == "local":
        from asyncfc.local import model as local_model

        return local_model(**options)
    import openai

    from asyncfc.models.openai_chat import OpenAIChatModel

    try:
        return OpenAIChatModel(
            config.model, base_url=config.base_url, api_key=config.api_key, temperature=0.0, seed=0, **options
        )
    except openai.OpenAIError as exc:  # e.g. no API key for the default endpoint
        raise EndpointUnreachable(f"cannot set up model {config.model!r}: {exc}") from exc


async def run_entry(
    entry: Entry,
    plan: Plan,
    mode: ModeName,
    config: Config,
    *,
    rep: int = 0,
    model: Model | None = None,
    warm_model: Model | None = None,
    executor: Executor | None = None,
    keep_trace: bool = True,
) -> Run:
    """Run one entry in one mode through one session and judge it with the official checker.

    A real model gets a worked example from another entry (``config.example``); with a
    ``warm_model`` (the same endpoint, one output token), one untimed request with the
    run's own prefix (system prompt, example, tools) comes first, so every mode starts
    with the server's prompt cache warm.
    """
    instances = instances_for(entry)
    tools = entry_tools(instances, config)
    options: dict[str, Any] = {
        "mode": mode,
        "system_prompt": SYSTEM_PROMPT,
        "max_steps": config.max_steps,
        "default_timeout": None,
        "early_dispatch": True,
        "parallel_tool_calls": config.fc == "parallel",
        # a fixed window is scaled like the delays it is measured against; auto measures them
        "grace": config.grace if isinstance(config.grace, str) else config.grace * config.time_scale,
        "executor": executor or ThreadExecutor(default_timeout=None),
        # the replay plays the ground truth, passing on or awaiting every value it has not seen,
        # so a literal it writes is never blind; and it would not emit a held call again
        "hold_blind_writes": False if config.replay else None,
        **config.agent_options,
    }
    agent = Agent(make_model(plan, config, model), tools, **options)
    run = Run(entry.id, entry.category, mode, rep)
    if not config.replay and config.example:
        source = example_entry(entry, load_category(entry.category))
        if source is not None:
            agent.profile = with_example(agent.profile, await worked_example(source, mode))
            run.notes.append(f"worked example: {source.id}")
    if warm_model is not None:
        await _warm_up(warm_model, agent, entry, config)
    by_name = {t.name: t for t in tools}
    set_tools = getattr(agent, "set_tools", None)
    if not config.replay and entry.missed_function and set_tools is None:
        run.notes.append("Agent.set_tools missing: held-out functions were visible in every turn")
    intervals: list[tuple[float, float]] = []
    try:
        async with agent.session() as session:
            for turn in range(entry.turns):
                if not config.replay and entry.missed_function and set_tools is not None:
                    set_tools([by_name[d["name"]] for d in entry.functions(turn) if d["name"] in by_name])
                messages = [Message("user", m["content"]) for m in entry.user_messages(turn)]
                result = await session.run(messages)
                run.wall_s += result.wall_s
                run.model_s += result.model_s
                run.steps += result.steps
                if result.stop_reason != "answer":
                    run.notes.append(f"turn {turn}: {result.stop_reason}")
                ran = [c for c in result.calls if c.ran and c.started_at is not None]
                run.calls += len(ran)
                run.references += sum(1 for c in result.calls if c.deps)
                for c in ran:
                    assert c.started_at is not None and c.finished_at is not None
                    run.tool_s += c.finished_at - c.started_at
                    intervals.append((c.started_at, c.finished_at))
                run.trajectory.append(trajectory_of(result.calls))
                if config.replay and mode == "sync":
                    expected = [len(s) for s in plan.steps[turn]]
                    match = _step_sizes(result.calls) == expected
                    run.plan_match = match if run.plan_match is None else run.plan_match and match
            shapes = _turn_shapes(session.messages)
            run.await_steps = sum(a for a, _ in shapes)
            run.revisions = sum(max(0, t - 1) for _, t in shapes)
            if keep_trace:
                run.trace = session.trace
    except ModelError as exc:
        if "cannot reach" in str(exc):
            raise EndpointUnreachable(str(exc)) from exc
        run.notes.append(f"model error: {exc}")
        run.error_type = "model_error"
        return run
    run.call_union_s = _union(intervals)
    while len(run.trajectory) < entry.turns:
        run.trajectory.append([])
    run.valid, run.error_type = judge(entry, run.trajectory)
    return run


async def _warm_up(warm_model: Model, agent: Agent, entry: Entry, config: Config) -> None:
    """One untimed step with ``agent``'s prefix, on fresh instances with instant tools (the
    ones the first turn shows, when functions are held out)."""
    instant = dataclasses.replace(config, delay_s=0.0, delay_profile={})
    tools = entry_tools(instances_for(entry), instant)
    if entry.missed_function:
        shown = {d["name"] for d in entry.functions(0)}
        tools = [t for t in tools if t.name in shown]
    warm = Agent(
        warm_model,
        tools,
        mode=agent.mode,
        system_prompt=agent.system_prompt,
        parallel_tool_calls=agent.parallel_tool_calls,
        max_steps=1,
        executor=agent.executor,
    )
    warm.profile = agent.profile
    try:
        await warm.run("Hello")
    except ModelError as exc:
        if "cannot reach" in str(exc):
            raise EndpointUnreachable(str(exc)) from exc
    finally:
        await warm.close()


@dataclass
class Experiment:
    """Everything one configuration produced."""

    config: Config
    entries: list[Entry]
    runs: list[Run] = field(default_factory=list)
    bounds: dict[str, Bounds] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)


async def check_endpoint(model: Model) -> None:
    """Raise :class:`EndpointUnreachable` if a real model's server does not answer at all."""
    import openai

    client = getattr(model, "client", None)
    if client is None:
        return
    try:
        await client.with_options(max_retries=0, timeout=10.0).models.list()
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise EndpointUnreachable(f"cannot reach {client.base_url}: {exc}") from exc
    except openai.APIError:
        pass  # reachable; the server just does not list models


async def run_experiment(
    entries: Sequence[Entry],
    config: Config,
    on_run: Callable[[Run], None] | None = None,
) -> Experiment:
    """Every entry in every mode (modes back to back per entry), ``config.repeat`` times."""
    exp = Experiment(config, list(entries))
    fine = ANNOTATIONS
    for entry in entries:
        # the model's behaviour: always the fine table, whatever the runtime schedules with
        plan = build_plan(entry, config.fc, fine, max_steps=config.max_steps)
        exp.plans[entry.id] = plan
        tools = {t.name: t for t in make_tools(instances_for(entry), config.annotations())}
        exp.bounds[entry.id] = entry_bounds(plan, tools, config)
    model = warm = None
    if not config.replay:
        model, warm = real_model(config), real_model(config, max_tokens=1)
    executor = ThreadExecutor(default_timeout=None)  # shared: one per run would leak thread pools
    try:
        if model is not None:
            await check_endpoint(model)
        for rep in range(config.repeat):
            for entry in entries:
                for mode in config.modes:
                    run = await run_entry(
                        entry,
                        exp.plans[entry.id],
                        mode,
                        config,
                        rep=rep,
                        model=model,
                        warm_model=warm,
                        executor=executor,
                        keep_trace=rep == 0,
                    )
                    exp.runs.append(run)
                    if on_run is not None:
                        on_run(run)
    finally:
        executor.shutdown()
        for m in (model, warm):
            aclose = getattr(m, "aclose", None)
            if aclose is not None:
                await aclose()
    return exp


def rows(exp: Experiment) -> list[dict[str, Any]]:
    """One row per entry and mode (repetitions averaged; valid only if every repetition passed)."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in exp.runs:
        groups.setdefault((run.entry, run.mode), []).append(run)
    out: list[dict[str, Any]] = []
    for (entry, mode), runs in groups.items():
        b = exp.bounds[entry]
        first = runs[0]
        row: dict[str, Any] = {
            "entry": entry,
            "category": first.category,
            "mode": mode,
            "reps": len(runs),
            "valid": all(r.valid for r in runs),
            "error_type": next((r.error_type for r in runs if r.error_type), None),
        }
        for key in (
            "wall_s",
            "model_s",
            "tool_s",
            "call_union_s",
            "steps",
            "calls",
            "await_steps",
            "references",
            "revisions",
        ):
            row[key] = statistics.fmean(float(getattr(r, key)) for r in runs)
        row.update(
            ideal_s=b.ideal_s,
            overlap_only_s=b.overlap_only_s,
            sync_ideal_s=b.sync_s,
            parallel_ideal_s=b.parallel_s,
        )
        if first.plan_match is not None:
            row["plan_match"] = all(bool(r.plan_match) for r in runs)
        notes = sorted({n for r in runs for n in r.notes})
        if notes:
            row["notes"] = notes
        row["trajectory"] = first.trajectory
        out.append(row)
    return out
