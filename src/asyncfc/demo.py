"""The demo task: a small errand with slow lookups and one dependent action.

The tools sleep for realistic latencies (a weather API, an exchange-rate API, an email
relay). Some calls are independent (two lookups), one depends on the others (the email
needs their results): the shape where asynchronous calling pays off.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from .models.base import Message, ToolCall
from .scheduler import Mode
from .tools import Tool, tool

WEATHER = {
    "paris": "18 C, light rain",
    "tokyo": "24 C, sunny",
    "london": "15 C, cloudy",
    "berlin": "12 C, windy",
}
RATES = {("EUR", "USD"): 1.08, ("USD", "EUR"): 0.93, ("EUR", "JPY"): 162.4, ("USD", "JPY"): 150.2}


@dataclass
class Errands:
    """The world the tools act on; its final state is what a task is judged by."""

    outbox: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    delay_scale: float = 1.0

    def tools(self) -> list[Tool]:
        scale = self.delay_scale

        @tool(pure=True)
        async def get_weather(city: str) -> str:
            """Get the current weather for a city.

            Args:
                city: the city name, e.g. Paris
            """
            await asyncio.sleep(2.0 * scale)
            return f"{city}: {WEATHER.get(city.strip().lower(), '20 C, clear')}"

        @tool(pure=True)
        async def get_exchange_rate(base: str, quote: str) -> float:
            """Get the exchange rate from one currency to another.

            Args:
                base: currency code to convert from, e.g. EUR
                quote: currency code to convert to, e.g. USD
            """
            await asyncio.sleep(1.5 * scale)
            return RATES.get((base.upper(), quote.upper()), 1.0)

        @tool(pure=True)
        async def multiply(a: float, b: float) -> float:
            """Multiply two numbers.

            Args:
                a: first number
                b: second number
            """
            await asyncio.sleep(0.3 * scale)
            return round(a * b, 4)

        @tool(writes=["outbox"])
        async def send_email(to: str, body: str) -> str:
            """Send an email.

            Args:
                to: recipient address
                body: the text of the email
            """
            await asyncio.sleep(0.5 * scale)
            self.outbox.append({"to": to, "body": body})
            return f"email sent to {to}"

        @tool(writes=["files/{path}"])
        async def write_file(path: str, content: str) -> str:
            """Write a text file.

            Args:
                path: file name, e.g. notes.txt
                content: the text to write
            """
            await asyncio.sleep(0.3 * scale)
            self.files[path] = content
            return f"wrote {len(content)} characters to {path}"

        return [get_weather, get_exchange_rate, multiply, send_email, write_file]


SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the tools to do what the user asks, one tool call per message, "
    "and never make up a value that a tool can give you. Call each tool at most once with the same "
    "arguments. After the last call the task needs, reply with one plain sentence and no tool call."
)
"""A generic system prompt for the demo tools (all modes); the async instructions follow it."""


@dataclass(frozen=True)
class DemoTask:
    """A small multi-step task and the final state that counts as done."""

    name: str
    prompt: str
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Files that must exist at the end, each with the texts its content must contain."""
    emails: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    """Emails that must be sent, once each: (recipient, texts the body must contain)."""

    def problems(self, world: Errands) -> list[str]:
        """What is wrong with the final state (empty: the task was done, exactly once)."""
        out: list[str] = []
        if set(world.files) != set(self.files):
            out.append(f"files {sorted(world.files)}, expected {sorted(self.files)}")
        for path, texts in self.files.items():
            if path in world.files and not all(t in world.files[path] for t in texts):
                out.append(f"{path} is {world.files[path]!r}, expected it to contain {texts}")
        if len(world.outbox) != len(self.emails):
            out.append(f"{len(world.outbox)} emails sent, expected {len(self.emails)}")
        for to, texts in self.emails:
            if not any(m["to"] == to and all(t in m["body"] for t in texts) for m in world.outbox):
                out.append(f"no email to {to} containing {texts}: {world.outbox}")
        return out


TASKS: dict[str, DemoTask] = {
    t.name: t
    for t in (
        DemoTask(
            "convert",
            "Get the EUR to USD exchange rate, multiply 250 by it, and write the result to the file usd.txt.",
            files={"usd.txt": ("270",)},
        ),
        DemoTask(
            "rates_file",
            "Get the EUR to USD and the EUR to JPY exchange rates, then write both to the file eur.txt.",
            files={"eur.txt": ("1.08", "162.4")},
        ),
        DemoTask(
            "weather_email",
            "Get the weather in London, then email it to carol@example.com.",
            emails=[("carol@example.com", (WEATHER["london"],))],
        ),
        DemoTask(
            "weather_file",
            "Get the weather in Paris, then write it to the file paris.txt.",
            files={"paris.txt": (WEATHER["paris"],)},
        ),
    )
}
"""Tasks the local 1.5B model completes in sync and async mode (see tests/test_llm.py)."""

DEMO_TASK = TASKS["convert"].prompt


def worked_example(mode: Mode) -> list[Message]:
    """One finished task as earlier conversation turns (a few-shot example), in ``mode``'s form.

    Small models (Qwen2.5-Coder 1.5B) follow a demonstration far better than rules: with it
    they make each call once, pass placeholders on in async mode and stop after the last
    call. In async mode the example shows what the runtime really shows: one earlier value
    already delivered (``rewrite``), the newest calls still pending, and the model writing
    ids for both values, delivered or not. Its future ids (97-99) are not those of a fresh
    session's first calls, so the model must read the ids it is given.
    """
    is_async = mode == "async"

    def result(seq: int, value: Any, pending: bool) -> str:
        if not is_async:
            return str(value)
        if pending:
            return json.dumps({"future": f"fut_{seq}", "status": "pending"})
        return json.dumps({"future": f"fut_{seq}", "status": "resolved", "value": value})

    def call(i: int, name: str, args: dict[str, Any]) -> Message:
        return Message("assistant", "", [ToolCall(f"example_{i}", name, json.dumps(args))])

    content = "EUR: fut_97\nUSD: fut_98" if is_async else "EUR: 1.17\nUSD: 1.27"
    return [
        Message(
            "user",
            "Get the GBP to EUR and the GBP to USD exchange rates, then write both to the file gbp.txt.",
        ),
        call(1, "get_exchange_rate", {"base": "GBP", "quote": "EUR"}),
        Message("tool", result(97, 1.17, pending=False), tool_call_id="example_1"),
        call(2, "get_exchange_rate", {"base": "GBP", "quote": "USD"}),
        Message("tool", result(98, 1.27, pending=True), tool_call_id="example_2"),
        call(3, "write_file", {"path": "gbp.txt", "content": content}),
        Message("tool", result(99, "wrote 20 characters to gbp.txt", pending=True), tool_call_id="example_3"),
        Message("assistant", "I wrote both GBP exchange rates to gbp.txt."),
    ]


def task_messages(task: str, mode: Mode) -> list[Message]:
    """The worked example, then ``task`` as the user's request: what to pass to ``Agent.run``."""
    return [*worked_example(mode), Message("user", task)]


def summary(calls: list[Any]) -> list[str]:
    """One line per call: id, name, arguments as the model wrote them, outcome; for a call
    that referenced futures, a second line with the arguments the tool actually ran with."""
    lines = []
    for c in calls:
        outcome = f"error {c.error.kind.value}" if c.error else repr(c.value)
        lines.append(f"{c.id:6} {c.name}({c.raw_arguments}) -> {outcome}")
        if c.deps and c.resolved_arguments is not None:
            waited = ", ".join(f"fut_{d}" for d in c.deps)
            lines.append(f"{'':6}   ran with {json.dumps(c.resolved_arguments)} (after {waited})")
    return lines
