"""``asyncfc bench subagents``: sub-agents as futures, the paper's "asynchronous thinking".

A *composed request* asks 2-4 independent sub-questions about a small fictional atlas and
one action that combines the answers (one report sent to a recipient). The parent agent has
two tools: ``research(task)``, a sub-agent (:meth:`asyncfc.Agent.as_tool`) that answers one
sub-question with 1-3 ``lookup`` calls, and ``send_report(to, body)``. Runs are judged by
the final state (exactly one report, to the right recipient, holding every expected answer)
and by the sub-agents' answers (each expected answer is in some research answer); no model
judges.

Modes (the parent and its sub-agents in the same mode): ``sync`` runs the sub-agents one
after another; ``parallel`` runs the sub-agents of one model step together and waits for
all; ``async`` hands the parent a future per sub-agent, so it writes the report call (with
``fut_N.answer`` references) while they still think.

``--model sim`` (default) plays the requests against :class:`asyncfc.testing.SimServer`, a
real OpenAI-compatible HTTP server with simulated decode that serves concurrent requests
concurrently (as a hosted API does); the model's moves are a deterministic policy. ``--model
local`` uses the embedded llama-server (one slot: its requests queue).

The JSON follows ``asyncfc bench tasks``: pass rate per mode, mean speedup over sync with a
95% bootstrap interval (pairs resampled), McNemar's exact p, and the ideal speedup (the sync
runs' own times with every sub-agent overlapped with the others and with the parent's
later steps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Any

from asyncfc.agent import Agent, RunResult
from asyncfc.errors import ModelError
from asyncfc.mode import ModeName
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.models.base import Message, Model
from asyncfc.testing.scripted import Ref, ScriptedCall, TurnSpec, call_results, shown
from asyncfc.tools import Tool, tool
from asyncfc_bench.stats import efficiency, mcnemar, paired_ratio_ci, speedup
from asyncfc_bench.tasks.script import Text, step

__all__ = [
    "ATLAS",
    "Request",
    "SubRun",
    "add_parser",
    "make_requests",
    "policy",
    "run_bench",
    "summarize",
]

MODES: tuple[ModeName, ...] = ("sync", "parallel", "async")

ATLAS: dict[str, dict[str, Any]] = {
    # countries
    "Veltria": {"capital": "Orvane", "founded": 1648},
    "Kestmark": {"capital": "Dunmere", "founded": 1821},
    "Solvane": {"capital": "Pellor", "founded": 1907},
    "Arvonia": {"capital": "Tessaly", "founded": 1532},
    # cities
    "Orvane": {"population": 412300, "mayor": "Ilsa Brandt"},
    "Dunmere": {"population": 98750, "mayor": "Tomas Reyl"},
    "Pellor": {"population": 1204000, "mayor": "Mara Quint"},
    "Tessaly": {"population": 56420, "mayor": "Oren Vask"},
    # people
    "Ilsa Brandt": {"age": 47, "party": "Green League"},
    "Tomas Reyl": {"age": 62, "party": "Harbor Party"},
    "Mara Quint": {"age": 39, "party": "Civic Union"},
    "Oren Vask": {"age": 55, "party": "Free Assembly"},
}
"""A fictional atlas, so no model can answer from memory."""

RECIPIENTS = ["ana@example.com", "ben@example.com", "chen@example.com", "dara@example.com"]


@dataclass(frozen=True)
class Question:
    """One sub-question: its text, the lookups that answer it (entity, attribute; ``None``
    as entity means the previous lookup's value) and the expected answer."""

    text: str
    chain: tuple[tuple[str | None, str], ...]
    expected: str | int


def _questions() -> list[Question]:
    out: list[Question] = []
    for country, facts in ATLAS.items():
        if "capital" not in facts:
            continue
        city = facts["capital"]
        mayor = ATLAS[city]["mayor"]
        out += [
            Question(f"What is the capital of {country}?", ((country, "capital"),), city),
            Question(f"In which year was {country} founded?", ((country, "founded"),), facts["founded"]),
            Question(
                f"What is the population of the capital of {country}?",
                ((country, "capital"), (None, "population")),
                ATLAS[city]["population"],
            ),
            Question(
                f"Who is the mayor of the capital of {country}?",
                ((country, "capital"), (None, "mayor")),
                mayor,
            ),
            Question(
                f"How old is the mayor of the capital of {country}?",
                ((country, "capital"), (None, "mayor"), (None, "age")),
                ATLAS[mayor]["age"],
            ),
            Question(
                f"Which party does the mayor of the capital of {country} belong to?",
                ((country, "capital"), (None, "mayor"), (None, "party")),
                ATLAS[mayor]["party"],
            ),
        ]
    return out


QUESTIONS = _questions()


@dataclass(frozen=True)
class Request:
    """A composed request: independent sub-questions and one report combining their answers."""

    name: str
    to: str
    questions: tuple[Question, ...]

    @property
    def prompt(self) -> str:
        listed = " ".join(f"({i}) {q.text}" for i, q in enumerate(self.questions, 1))
        return (
            f"Answer these {len(self.questions)} questions: {listed} "
            f"Then send one report to {self.to} that gives every answer."
        )


def make_requests(count: int, sizes: Sequence[int], seed: int = 0) -> list[Request]:
    """``count`` requests, the i-th with ``sizes[i % len(sizes)]`` sub-questions about
    different countries, drawn with ``seed``."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        k = sizes[i % len(sizes)]
        countries = rng.sample([c for c, f in ATLAS.items() if "capital" in f], k)
        qs = tuple(rng.choice([q for q in QUESTIONS if q.chain[0][0] == c]) for c in countries)
        out.append(Request(f"r{i + 1}-{k}q", rng.choice(RECIPIENTS), qs))
    return out


# -- the world ------------------------------------------------------------------------


@dataclass
class World:
    """The atlas lookups and the outbox of one run, with a log of every execution."""

    latency_s: float
    outbox: list[dict[str, str]] = field(default_factory=list)
    lookups: list[tuple[str, str]] = field(default_factory=list)

    def sub_tools(self) -> list[Tool]:
        world = self

        @tool(reads=["atlas/{entity}"])
        async def lookup(entity: str, attribute: str) -> Any:
            """Look up one attribute of an entity in the atlas.

            Args:
                entity: a country, a city or a person, e.g. "Veltria"
                attribute: capital or founded (countries), population or mayor (cities),
                    age or party (people)
            """
            world.lookups.append((entity, attribute))
            await asyncio.sleep(world.latency_s)
            facts = ATLAS.get(entity.strip())
            if facts is None:
                raise KeyError(f"no atlas entry for {entity!r}")
            if attribute.strip() not in facts:
                raise KeyError(f"{entity} has no {attribute!r}; it has: {', '.join(facts)}")
            return facts[attribute.strip()]

        return [lookup]

    def send_tool(self) -> Tool:
        world = self

        @tool(writes=["outbox"])
        async def send_report(to: str, body: str) -> str:
            """Send one report by email.

            Args:
                to: the recipient's email address
                body: the report text, with every answer
            """
            await asyncio.sleep(world.latency_s / 2)
            world.outbox.append({"to": to, "body": body})
            return f"sent to {to}"

        return send_report


SUB_SYSTEM = (
    "You answer one question about a fictional atlas. Use the lookup tool; follow the chain "
    "(country -> capital city -> mayor -> age or party) one lookup at a time. When you know the "
    "answer, reply with the answer only."
)
PARENT_SYSTEM = (
    "You coordinate research. For each question, call the research tool once with that question "
    "as the task (call it for all questions at once). Then call send_report once with every answer. "
    "Then reply with one short sentence."
)


# -- the simulated model's moves -------------------------------------------------------


def _held(content: str) -> bool:
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "not_run"


def _progress(transcript: Sequence[Message]) -> tuple[int, list[ScriptedCall]]:
    """Steps played so far, and the calls of the last step the agent held back (to emit again)."""
    answers = {m.tool_call_id: m.content for m in transcript if m.role == "tool"}
    done = 0
    held: list[ScriptedCall] = []
    for m in transcript:
        calls = [c for c in m.tool_calls if c.name != AWAIT_TOOL] if m.role == "assistant" else []
        if not calls:
            continue
        if not held:
            done += 1
        held = [ScriptedCall(c.name, json.loads(c.arguments)) for c in calls if _held(answers.get(c.id, ""))]
    return done, held


def policy(requests: Sequence[Request]) -> Any:
    """The simulated model: a pure function of the transcript, so the parent and any number
    of concurrent sub-agents share one server. The parent researches every question at once,
    sends the report from the answers (``fut_N.answer`` while they are pending), then replies;
    a sub-agent follows its question's lookup chain and answers with the last value."""
    by_prompt = {r.prompt: r for r in requests}
    by_question = {q.text: q for r in requests for q in r.questions}

    def turn(transcript: Sequence[Message]) -> TurnSpec:
        user = next(m.content for m in transcript if m.role == "user")
        done, held = _progress(transcript)
        if held:
            return held
        request = by_prompt.get(user)
        if request is not None:
            if done == 0:
                return [ScriptedCall("research", {"task": q.text}) for q in request.questions]
            if done == 1:
                template = " ".join(f"({i + 1}) {{{i}}}" for i in range(len(request.questions)))
                refs = [Ref(i + 1, ".answer") for i in range(len(request.questions))]
                report = step(ScriptedCall("send_report", {"to": request.to, "body": Text(template, *refs)}))
                assert callable(report)
                return report(transcript)
            return f"Sent the report to {request.to}."
        question = by_question[user]
        if done < len(question.chain):
            entity, attribute = question.chain[done]
            return [
                ScriptedCall(
                    "lookup", {"entity": entity if entity is not None else Ref(done), "attribute": attribute}
                )
            ]
        last = shown(Ref(len(question.chain)), call_results(transcript))
        fid = f"fut_{len(question.chain)}"
        if last != fid:
            return str(last)
        known = _delivered(transcript, fid)  # delivered later, with another message
        if known is not None:
            return str(known)
        return [ScriptedCall(AWAIT_TOOL, {"ids": [fid]})]

    return turn


def _delivered(transcript: Sequence[Message], fid: str) -> Any:
    """The value of ``fid`` as some tool message delivered it (an await answer, a value
    carried with a later result), or None."""
    found: list[Any] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if v.get("future") == fid and v.get("status") == "resolved":
                found.append(v.get("value"))
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for m in transcript:
        if m.role == "tool":
            try:
                walk(json.loads(m.content))
            except ValueError:
                continue
    return found[-1] if found else None


# -- one run ----------------------------------------------------------------------------


@dataclass
class SubRun:
    """One request in one mode: what it cost and how it was judged."""

    request: str
    mode: str
    questions: int
    passed: bool
    problems: list[str]
    wall_s: float
    model_s: float
    """The parent's own model time."""
    step_s: list[float]
    """Each of the parent's model steps, in order."""
    first_ttft_s: float
    """The parent's first step's time to first token."""
    sub_s: list[float]
    """Each research call's duration (a whole sub-agent run)."""
    other_call_s: float
    """The parent's other calls' durations (the report)."""
    steps: int
    """Model steps, sub-agents included."""
    calls: int
    """Calls, sub-agents' included."""
    lookups: int
    """Lookups executed (each sub-agent call exactly once: equals the sub-agents' lookup calls)."""
    prompt_tokens: int
    output_tokens: int
    references: int
    """Parent calls that passed a future on (``fut_N.answer``)."""
    answer: str
    consistency: list[str]

    @property
    def ideal_s(self) -> float:
        """Zero-overhead async time from this run's own times: each sub-agent starts as its
        research call is decoded and overlaps the others and the parent's later steps; the
        report starts once every answer is in and its call is written."""
        if not self.step_s:
            return 0.0
        first, k = self.step_s[0], len(self.sub_s)
        ttft = min(self.first_ttft_s, first)
        # the i-th research call is decoded (and could start) an i-th of the way through decode
        answers = max(
            (ttft + (first - ttft) * (i + 1) / k + s for i, s in enumerate(self.sub_s)), default=first
        )
        report_written = first + (self.step_s[1] if len(self.step_s) > 1 else 0.0)
        return max(max(answers, report_written) + self.other_call_s, first + sum(self.step_s[1:]))

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out["ideal_s"] = round(self.ideal_s, 4)
        for k in ("wall_s", "model_s", "other_call_s"):
            out[k] = round(out[k], 4)
        out["sub_s"] = [round(x, 4) for x in self.sub_s]
        out["step_s"] = [round(x, 4) for x in self.step_s]
        return out


def _mentions(text: str, expected: str | int) -> bool:
    if isinstance(expected, int):
        digits = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)}
        return expected in digits
    return expected.lower() in text.lower()


def judge(request: Request, world: World, result: RunResult) -> list[str]:
    problems: list[str] = []
    if len(world.outbox) != 1:
        problems.append(f"{len(world.outbox)} reports sent (expected exactly one)")
    for report in world.outbox:
        if report["to"].strip().lower() != request.to:
            problems.append(f"report sent to {report['to']!r}, not {request.to!r}")
        for q in request.questions:
            if not _mentions(report["body"], q.expected):
                problems.append(f"report lacks {q.expected!r} ({q.text})")
    answers = [
        str(c.value.get("answer", ""))
        for c in result.calls
        if c.name == "research" and isinstance(c.value, dict)
    ]
    for q in request.questions:
        if not any(_mentions(a, q.expected) for a in answers):
            problems.append(f"no research answer gives {q.expected!r} ({q.text})")
    return problems


def _consistency(result: RunResult, world: World) -> list[str]:
    out = [f"{c.id} {c.name} delivered {c.deliveries} times" for c in result.calls if c.deliveries != 1]
    sub_lookups = sum(
        1
        for c in result.calls
        if c.name == "research" and isinstance(c.value, dict)
        for s in c.value.get("calls", [])
        if s.get("name") == "lookup" and s.get("ran")
    )
    failed_research = any(c.name == "research" and c.error is not None for c in result.calls)
    if not failed_research and sub_lookups != len(world.lookups):
        out.append(f"{len(world.lookups)} lookups ran for {sub_lookups} lookup calls that ran")
    return out


async def run_one(
    request: Request,
    mode: ModeName,
    model: Model,
    *,
    latency_s: float,
    max_steps: int = 10,
    timeout_s: float = 600.0,
) -> tuple[SubRun, RunResult]:
    world = World(latency_s)
    sub = Agent(model, world.sub_tools(), mode=mode, system_prompt=SUB_SYSTEM, max_steps=max_steps)
    research = sub.as_tool(
        name="research",
        description="Hand one question to a research assistant; returns its answer.",
        include_calls=True,
        timeout=timeout_s,
    )
    parent = Agent(
        model,
        [research, world.send_tool()],
        mode=mode,
        system_prompt=PARENT_SYSTEM,
        max_steps=max_steps,
        default_timeout=timeout_s,
    )
    async with sub, parent:
        t0 = time.perf_counter()
        result = await parent.run(request.prompt)
        wall = time.perf_counter() - t0
    problems = judge(request, world, result)
    if result.stop_reason != "answer":
        problems.append("parent stopped at its step limit")

    def duration(c: Any) -> float:
        if c.started_at is None or c.finished_at is None:
            return 0.0
        return float(c.finished_at - c.started_at)

    sub_s = [duration(c) for c in result.calls if c.name == "research"]
    other = sum(duration(c) for c in result.calls if c.name != "research")
    sub_calls = sum(
        len(c.value.get("calls", []))
        for c in result.calls
        if c.name == "research" and isinstance(c.value, dict)
    )
    run = SubRun(
        request=request.name,
        mode=mode,
        questions=len(request.questions),
        passed=not problems,
        problems=problems,
        wall_s=wall,
        model_s=result.model_s,
        step_s=[
            float(s.end - s.start)
            for s in result.trace.spans
            if s.cat == "model" and s.lane == "model" and s.end is not None
        ],
        first_ttft_s=next(
            (
                float(s.args.get("ttft_s") or 0.0)
                for s in result.trace.spans
                if s.cat == "model" and s.lane == "model"
            ),
            0.0,
        ),
        sub_s=sub_s,
        other_call_s=other,
        steps=result.usage.steps,
        calls=len(result.calls) + sub_calls,
        lookups=len(world.lookups),
        prompt_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        references=sum(1 for c in result.calls if c.deps),
        answer=result.text,
        consistency=_consistency(result, world),
    )
    return run, result


# -- the summary ------------------------------------------------------------------------


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def summarize(runs: Sequence[SubRun], modes: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """Pass rates, mean speedups over sync with 95% intervals, McNemar p and the ideal, as
    ``asyncfc bench tasks`` reports them (runs paired by request)."""
    by = {m: {r.request: r for r in runs if r.mode == m} for m in modes}
    keys = [k for k in dict.fromkeys(r.request for r in runs) if all(k in by[m] for m in modes)]
    out: dict[str, Any] = {"tasks": len(keys), "runs_per_task": 1, "modes": {}}
    if not keys:
        return out
    for m in modes:
        rs = [by[m][k] for k in keys]
        passed = sum(r.passed for r in rs)
        out["modes"][m] = {
            "passed": passed,
            "pass_rate": _r(passed / len(rs)),
            "mean_wall_s": _r(fmean(r.wall_s for r in rs)),
            "mean_model_s": _r(fmean(r.model_s for r in rs)),
            "mean_ideal_s": _r(fmean(r.ideal_s for r in rs)),
            "mean_steps": _r(fmean(r.steps for r in rs), 2),
            "mean_calls": _r(fmean(r.calls for r in rs), 2),
            "references": sum(r.references for r in rs),
            "prompt_tokens": sum(r.prompt_tokens for r in rs),
            "output_tokens": sum(r.output_tokens for r in rs),
            "by_questions": {
                str(n): {
                    "runs": sum(1 for r in rs if r.questions == n),
                    "passed": sum(1 for r in rs if r.questions == n and r.passed),
                }
                for n in sorted({r.questions for r in rs})
            },
        }
    if "sync" in modes:
        sync = [by["sync"][k] for k in keys]
        walls = [r.wall_s for r in sync]
        out["speedup"], out["mcnemar_p"], out["speedup_by_questions"] = {}, {}, {}
        for m in modes:
            if m == "sync":
                continue
            other = [by[m][k] for k in keys]
            lo, hi = paired_ratio_ci(walls, [r.wall_s for r in other], n=4000, seed=seed)
            out["speedup"][m] = {
                "mean": _r(speedup(walls, [r.wall_s for r in other])),
                "ci95": [_r(lo), _r(hi)],
            }
            out["mcnemar_p"][m] = _r(mcnemar([r.passed for r in sync], [r.passed for r in other]))
            out["speedup_by_questions"][m] = {
                str(n): _r(
                    speedup(
                        [s.wall_s for s in sync if s.questions == n],
                        [o.wall_s for o, s in zip(other, sync, strict=True) if s.questions == n],
                    )
                )
                for n in sorted({r.questions for r in sync})
            }
        ideal = sum(r.ideal_s for r in sync)
        if ideal > 0:
            out["ideal_speedup"] = _r(sum(walls) / ideal)
            if "async" in modes:
                share = efficiency(sum(walls), sum(by["async"][k].wall_s for k in keys), ideal)
                out["efficiency"] = _r(share) if share is not None else None
        out["identical_judgement"] = all(
            by[m][k].passed == by["sync"][k].passed and by[m][k].problems == by["sync"][k].problems
            for m in modes
            for k in keys
        )
    out["per_task"] = [by[m][k].row() for k in keys for m in modes]
    return out


async def run_bench(
    requests: Sequence[Request],
    modes: Sequence[ModeName],
    model: Model,
    *,
    latency_s: float,
    seed: int = 0,
    max_steps: int = 10,
    timeout_s: float = 600.0,
    on_run: Any = None,
) -> dict[str, Any]:
    """Every request in every mode (modes interleaved per request, so load drifts hit all)."""
    runs: list[SubRun] = []
    results: dict[str, RunResult] = {}
    for request in requests:
        for mode in modes:
            run, result = await run_one(
                request, mode, model, latency_s=latency_s, max_steps=max_steps, timeout_s=timeout_s
            )
            runs.append(run)
            results.setdefault(mode, result)
            if on_run is not None:
                on_run(run)
    data = summarize(runs, modes, seed=seed)
    problems = [f"{r.request}:{r.mode}:{p}" for r in runs for p in r.consistency]
    data.update(consistent=not problems, problems=problems, _results=results)
    return data


# -- the command --------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers 2-4, got {text!r}") from None
    if not sizes or any(not 2 <= s <= 4 for s in sizes):
        raise argparse.ArgumentTypeError(f"sub-questions per request must be 2-4, got {text!r}")
    return sizes


def add_parser(bench: Any) -> None:
    from asyncfc.cli.options import non_negative_float, parse_modes, positive_float, positive_int

    p = bench.add_parser(
        "subagents",
        help="composed requests answered by sub-agents, sequential vs parallel vs async",
        description=(__doc__ or "").split("\n\n")[0],
    )
    p.add_argument(
        "--model",
        choices=["sim", "local"],
        default="sim",
        help="sim: the simulated-decode server (default); local: the embedded llama-server",
    )
    p.add_argument("--requests", type=positive_int, default=8, help="composed requests (default 8)")
    p.add_argument(
        "--subquestions",
        type=_sizes,
        default=[3],
        help="sub-questions per request, cycled, e.g. 2,3,4 (default 3)",
    )
    p.add_argument(
        "--modes", type=parse_modes, default=list(MODES), help="comma-separated (default sync,parallel,async)"
    )
    p.add_argument(
        "--latency",
        type=non_negative_float,
        help="seconds per lookup (default: 0.3 sim, 1.0 local); a report takes half",
    )
    p.add_argument(
        "--ttft", type=non_negative_float, default=0.3, help="sim: seconds to the first token (default 0.3)"
    )
    p.add_argument(
        "--tokens-per-s", type=positive_float, default=40.0, help="sim: decode speed (default 40 tokens/s)"
    )
    p.add_argument("--size", choices=["0.5b", "1.5b"], default="1.5b", help="local model size (default 1.5b)")
    p.add_argument(
        "--max-steps", type=positive_int, default=10, help="model steps per agent run (default 10)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="request draw, sampling and bootstrap seed (default 0)"
    )
    p.add_argument("--trace-dir", help="write the first request's Chrome trace per mode here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_subagents)


def cmd_subagents(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from asyncfc.cli.options import print_json
    from asyncfc.models.openai_chat import OpenAIChatModel

    err = Console(stderr=True)
    requests = make_requests(args.requests, args.subquestions, args.seed)
    latency = args.latency if args.latency is not None else (0.3 if args.model == "sim" else 1.0)
    started = time.perf_counter()

    def progress(run: SubRun) -> None:
        mark = "ok" if run.passed else "FAIL " + "; ".join(run.problems)[:120]
        err.print(f"{run.request} {run.mode:8} {run.wall_s:6.2f} s  {mark}")

    config: dict[str, Any] = {
        "model": args.model,
        "requests": args.requests,
        "subquestions": args.subquestions,
        "modes": args.modes,
        "lookup_latency_s": latency,
        "max_steps": args.max_steps,
        "seed": args.seed,
    }
    server_note = ""
    if args.model == "sim":
        from asyncfc.testing import SimServer

        config.update(ttft_s=args.ttft, tokens_per_s=args.tokens_per_s, decode_slots="unlimited")
        with SimServer([policy(requests)] * 100_000, ttft_s=args.ttft, tokens_per_s=args.tokens_per_s) as srv:
            model = OpenAIChatModel(srv.model_name, base_url=srv.base_url, api_key="sim", temperature=0.0)
            data = asyncio.run(_run_closing(requests, args, model, latency, progress))
    else:
        from asyncfc import local
        from asyncfc.local import LocalModel

        try:
            was_running = local.running(args.size)
            server = local.ensure_server(args.size)
        except local.LocalModelError as exc:
            err.print(f"[red]local model unavailable:[/red] {exc}")
            return 3
        config.update(size=args.size, base_url=server.base_url, temperature=0.0, decode_slots=1)
        local_model = LocalModel(
            server.model,
            size=args.size,
            base_url=server.base_url,
            temperature=0.0,
            seed=args.seed,
            max_tokens=256,
        )
        try:
            data = asyncio.run(_run_closing(requests, args, local_model, latency, progress))
        except ModelError as exc:
            err.print(f"[red]model failed:[/red] {exc}")
            return 3
        finally:
            server_note = local.release(args.size, started_here=was_running is None)
    data.update(config=config, elapsed_s=round(time.perf_counter() - started, 1), server=server_note or None)
    if args.trace_dir:
        folder = Path(args.trace_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for mode, result in data["_results"].items():
            result.trace.save(folder / f"subagents-{mode}.trace.json")
    if args.json:
        print_json(data)
    else:
        _print(data)
    return 0 if data["consistent"] else 1


async def _run_closing(
    requests: Sequence[Request], args: argparse.Namespace, model: Any, latency: float, progress: Any
) -> dict[str, Any]:
    try:
        return await run_bench(
            requests,
            args.modes,
            model,
            latency_s=latency,
            seed=args.seed,
            max_steps=args.max_steps,
            on_run=progress,
        )
    finally:
        await model.aclose()


def _print(data: dict[str, Any]) -> None:
    w = sys.stdout.write
    w(f"subagents: {data['tasks']} composed requests ({data['config']['model']})\n")
    for m, row in data["modes"].items():
        s = data.get("speedup", {}).get(m)
        extra = f"  speedup {s['mean']}x [{s['ci95'][0]}, {s['ci95'][1]}]" if s else ""
        w(f"  {m:8} pass {row['passed']}/{data['tasks']}  mean wall {row['mean_wall_s']} s{extra}\n")
    if "ideal_speedup" in data:
        w(
            f"  ideal speedup {data['ideal_speedup']}x, identical judgement: {data.get('identical_judgement')}\n"
        )
