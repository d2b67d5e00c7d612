"""The demo: one errand on the embedded model, sync against async, and where the time went.

Three slow, independent lookups feed one dependent action (an email with all three
values): the shape where asynchronous calling pays. The tools sleep like real web APIs
(``lookup_s``, 5 s by default, the latency the paper injected per call); the model gets
nothing written for this task, only the embedded model's profile. Each mode starts with
a warm prompt cache (one untimed request with the same prefix), so neither pays for the
other's cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncfc.agent import Agent, RunResult
from asyncfc.mode import ModeName
from asyncfc.models.base import Model
from asyncfc.scheduler import Call
from asyncfc.tools import Tool, tool
from asyncfc_bench.tasks.judge import leaked_example
from asyncfc_bench.tasks.measure import RecordingModel, turn_ideal

__all__ = [
    "Errands",
    "ModeRun",
    "SYSTEM_PROMPT",
    "TASK",
    "WEATHER",
    "leaks",
    "run_mode",
    "summary",
    "warm_up",
]

WEATHER = {
    "paris": "18 C, light rain",
    "tokyo": "24 C, sunny",
    "london": "15 C, cloudy",
    "berlin": "12 C, windy",
}

SYSTEM_PROMPT = "You are a helpful assistant. Use the tools to do what the user asks."
"""What a user would write; the same in every mode."""

TASK = "Get the weather in Paris, Tokyo and London, then email all three to carol@example.com."


@dataclass
class Errands:
    """The world the demo's tools act on; its final state is what the demo is judged by."""

    lookup_s: float = 5.0
    email_s: float = 0.3
    outbox: list[dict[str, str]] = field(default_factory=list)

    def tools(self) -> list[Tool]:
        @tool(pure=True)
        async def get_weather(city: str) -> str:
            """Get the current weather for a city.

            Args:
                city: the city name, e.g. Paris
            """
            await asyncio.sleep(self.lookup_s)
            return f"{city}: {WEATHER.get(city.strip().lower(), '20 C, clear')}"

        @tool(writes=["outbox"])
        async def send_email(to: str, body: str) -> str:
            """Send an email.

            Args:
                to: recipient address
                body: the text of the email
            """
            await asyncio.sleep(self.email_s)
            self.outbox.append({"to": to, "body": body})
            return f"email sent to {to}"

        return [get_weather, send_email]

    def problems(self) -> list[str]:
        """What is wrong with the final state (empty: the errand was done, exactly once)."""
        if len(self.outbox) != 1:
            return [f"{len(self.outbox)} emails sent, expected 1: {self.outbox}"]
        mail = self.outbox[0]
        out = [] if mail["to"] == "carol@example.com" else [f"email went to {mail['to']}"]
        missing = [c for c in ("paris", "tokyo", "london") if WEATHER[c] not in mail["body"]]
        if missing:
            out.append(f"the email lacks the weather in {', '.join(missing)}: {mail['body']!r}")
        return out


def leaks(answer: str, world: Errands) -> list[str]:
    """The answer or an email that repeats the embedded profile's worked example (its
    entities or sentences) instead of reporting this errand."""
    allowed = " ".join([TASK, *(f"{c}: {w}" for c, w in WEATHER.items())])
    found = leaked_example([answer, *(m["body"] for m in world.outbox)], allowed)
    return [f"repeats the worked example of the model's profile: {found[:4]}"] if found else []


@dataclass
class ModeRun:
    """One mode's run of the errand."""

    mode: ModeName
    result: RunResult
    problems: list[str]
    ideal_s: float
    """The zero-overhead asynchronous time of this run's own model steps and calls (see
    :func:`asyncfc_bench.tasks.measure.turn_ideal`): the model never waits for a value it
    only passes on, so from the sync run it bounds what async mode can reach."""

    @property
    def done(self) -> bool:
        return not self.problems and self.result.stop_reason == "answer"

    def breakdown(self) -> dict[str, float]:
        """Where the wall time went: prefill, decode, tools, and how much of it overlapped."""
        usage = self.result.usage
        tools = sum(_duration(c) for c in self.result.calls)
        busy = self.result.model_s + tools
        return {
            "wall_s": self.result.wall_s,
            "model_s": self.result.model_s,
            "prefill_s": usage.prefill_s,
            "decode_s": usage.decode_s,
            "tools_s": tools,
            "overlap_s": max(0.0, busy - self.result.wall_s),
        }

    def to_json(self) -> dict[str, Any]:
        usage = self.result.usage
        return {
            **{k: round(v, 3) for k, v in self.breakdown().items()},
            "done": self.done,
            "problems": self.problems,
            "steps": self.result.steps,
            "calls": [f"{c.name}({c.raw_arguments})" for c in self.result.calls],
            "answer": self.result.text,
            "prompt_tokens": usage.input_tokens,
            "cached_prompt_tokens": usage.cached_input_tokens,
            "ideal_async_s": round(self.ideal_s, 3),
        }


def _duration(call: Call) -> float:
    if call.started_at is None or call.finished_at is None:
        return 0.0
    return call.finished_at - call.started_at


async def warm_up(warm_model: Model, mode: ModeName, world: Errands) -> None:
    """One untimed request with the mode's real prefix (system prompt, example, tools)."""
    async with Agent(warm_model, world.tools(), mode=mode, system_prompt=SYSTEM_PROMPT, max_steps=1) as agent:
        await agent.run("Hello")


async def run_mode(model: Model, warm_model: Model, mode: ModeName, lookup_s: float) -> ModeRun:
    world = Errands(lookup_s=lookup_s)
    await warm_up(warm_model, mode, Errands(lookup_s=0.0))
    recorder = RecordingModel(model)
    tools = world.tools()
    async with Agent(recorder, tools, mode=mode, system_prompt=SYSTEM_PROMPT, max_steps=10) as agent:
        result = await agent.run(TASK)
    ideal = turn_ideal(recorder.steps, result.calls, {t.name: t for t in tools})
    return ModeRun(mode, result, world.problems() + leaks(result.text, world), ideal)


def summary(calls: Sequence[Call]) -> list[str]:
    """One line per call: id, name, arguments as the model wrote them, outcome; for a call
    that referenced futures, a second line with the arguments the tool actually ran with."""
    lines = []
    for c in calls:
        outcome = f"error {c.error.kind.value}" if c.error else repr(c.value)
        lines.append(f"{c.id:6} {c.name}({c.raw_arguments}) -> {outcome}")
        if c.deps and c.resolved_arguments is not None:
            waited = ", ".join(f"fut_{d}" for d in c.deps)
            lines.append(f"{'':6}   ran with {c.resolved_arguments} (after {waited})")
    return lines
