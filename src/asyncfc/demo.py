"""The demo task: a small errand with slow lookups and one dependent action.

The tools sleep for realistic latencies (a weather API, an exchange-rate API, an email
relay). Some calls are independent (two lookups), one depends on the others (the email
needs their results): the shape where asynchronous calling pays off.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

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


DEMO_TASK = (
    "Get the weather in Paris and in Tokyo, then send one email to alice@example.com with both reports."
)


def summary(calls: list[Any]) -> list[str]:
    """One line per call: id, name, arguments as written, outcome."""
    lines = []
    for c in calls:
        outcome = f"error {c.error.kind.value}" if c.error else repr(c.value)
        lines.append(f"{c.id:6} {c.name}({c.raw_arguments}) -> {outcome}")
    return lines
