"""The world the task suite's tools act on: deterministic data, real latency, honest annotations.

One :class:`World` per task run holds everything a tool can change (outbox, files,
orders, calendar, thermostats), so a task is judged by the state it leaves behind.
Latencies follow what such tools cost in practice: web lookups 1-3 s, database queries
0.2 s, file writes 50 ms. ``lookup_latency`` replaces the latency of every lookup (every
read-only tool: web and database), which is what a latency sweep varies; ``time_scale``
multiplies every latency, so tests run the same suite a thousand times faster. Each tool
declares the latency it has (``latency_s``), as a user who knows their tools would: the
cost-aware grace policy decides from it whether a conversation is shown futures at all.

Annotations say what each tool really touches: web lookups are ``pure`` (they change
none of our state), database and file tools read or write labels templated from their
arguments, so the scheduler may overlap a write to ``files/a.txt`` with one to
``files/b.txt`` but never a read of an order with an update of the same order.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from asyncfc.tools import Tool, tool

__all__ = [
    "BROKEN_PACKAGES",
    "CALENDAR",
    "CUSTOMERS",
    "FILES",
    "FLIGHTS",
    "INVENTORY",
    "LATENCY_S",
    "LOOKUPS",
    "Latency",
    "ORDERS",
    "ORDER_STATUSES",
    "PACKAGES",
    "RATES",
    "REJECTED_DOMAINS",
    "ROOMS",
    "STOCKS",
    "WEATHER",
    "World",
    "evaluate",
]

WEATHER: dict[str, str] = {
    "paris": "18 C, light rain",
    "tokyo": "24 C, sunny",
    "london": "15 C, cloudy",
    "berlin": "12 C, windy",
    "madrid": "27 C, sunny",
    "oslo": "3 C, snow",
}
RATES: dict[tuple[str, str], float] = {
    ("EUR", "USD"): 1.08,
    ("USD", "EUR"): 0.93,
    ("EUR", "JPY"): 162.4,
    ("USD", "JPY"): 150.2,
    ("EUR", "GBP"): 0.85,
    ("GBP", "EUR"): 1.17,
    ("GBP", "USD"): 1.27,
    ("USD", "GBP"): 0.79,
}
STOCKS: dict[str, float] = {"AAPL": 189.3, "MSFT": 412.6, "NVDA": 121.4, "TSLA": 248.9, "AMZN": 178.2}
FLIGHTS: dict[str, str] = {
    "LH441": "on time, departs 14:05 from gate B12",
    "BA287": "delayed 45 minutes, now departs 19:20",
    "AF1234": "cancelled",
}
PACKAGES: dict[str, str] = {
    "1Z999": "delivered on Monday",
    "TRK-5521": "in transit, expected Friday",
}
BROKEN_PACKAGES = frozenset({"TRK-7781"})
"""Tracking numbers for which the carrier's API fails (a failing tool mid-task)."""
CUSTOMERS: dict[str, dict[str, str]] = {
    "alice martin": {
        "id": "C-101",
        "name": "Alice Martin",
        "email": "alice.martin@example.com",
        "city": "Paris",
    },
    "bob chen": {"id": "C-102", "name": "Bob Chen", "email": "bob.chen@example.com", "city": "Tokyo"},
    "carla diaz": {"id": "C-103", "name": "Carla Diaz", "email": "carla.diaz@example.com", "city": "Madrid"},
    "dan okafor": {"id": "C-104", "name": "Dan Okafor", "email": "dan.okafor@example.com", "city": "London"},
}
ORDERS: dict[str, dict[str, Any]] = {
    "1042": {"order_id": "1042", "customer": "Alice Martin", "item": "standing desk", "total": 499.0, "status": "processing"},
    "1043": {"order_id": "1043", "customer": "Bob Chen", "item": "monitor arm", "total": 89.5, "status": "shipped"},
    "1044": {"order_id": "1044", "customer": "Carla Diaz", "item": "office chair", "total": 249.0, "status": "processing"},
    "1045": {"order_id": "1045", "customer": "Dan Okafor", "item": "desk lamp", "total": 39.9, "status": "delivered"},
}  # fmt: skip
ORDER_STATUSES = ("processing", "shipped", "delivered", "cancelled")
INVENTORY: dict[str, int] = {"standing desk": 3, "monitor arm": 0, "office chair": 12, "desk lamp": 25}
CALENDAR: dict[str, list[dict[str, str]]] = {
    "2026-12-01": [{"title": "Team standup", "time": "09:30"}, {"title": "Dentist", "time": "16:00"}],
    "2026-12-02": [{"title": "Quarterly review", "time": "11:00"}],
}
ROOMS: dict[str, float] = {"living room": 19.5, "bedroom": 17.0, "office": 21.0}
FILES: dict[str, str] = {
    "notes.txt": "Buy milk. Call the plumber on Tuesday. Renew the car insurance before the 15th.",
    "todo.txt": "1. Renew passport\n2. Book a dentist appointment\n3. Pay the electricity bill",
}
REJECTED_DOMAINS = (".invalid",)
"""Recipients the mail relay rejects (a failing tool)."""

LATENCY_S: dict[str, float] = {
    "get_weather": 2.0,
    "get_exchange_rate": 1.5,
    "get_stock_price": 1.0,
    "get_flight_status": 2.5,
    "track_package": 3.0,
    "find_customer": 0.2,
    "get_order": 0.2,
    "check_inventory": 0.2,
    "list_events": 0.2,
    "get_room_temperature": 0.2,
    "read_file": 0.05,
    "update_order_status": 0.2,
    "add_event": 0.2,
    "set_thermostat": 0.2,
    "write_file": 0.05,
    "send_email": 0.3,
    "calculate": 0.0,
}
"""Default latency of each tool, in seconds: web APIs 1-3 s, database 0.2 s, files 50 ms."""
LOOKUPS = frozenset(
    {
        "get_weather",
        "get_exchange_rate",
        "get_stock_price",
        "get_flight_status",
        "track_package",
        "find_customer",
        "get_order",
        "check_inventory",
        "list_events",
        "get_room_temperature",
    }
)
"""The lookup tools (web and database reads): the ones ``lookup_latency`` sets."""


def _key(text: str) -> str:
    return " ".join(text.strip().lower().split())


_OPS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def evaluate(expression: str) -> float:
    """Arithmetic on numbers only, parsed with ``ast`` (model output is never ``eval``-ed)."""
    if len(expression) > 200:
        raise ValueError("expression too long")

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            right = walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 8:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](walk(node.left), right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError(f"unsupported expression: {ast.dump(node)[:60]}")

    value = walk(ast.parse(expression.replace(",", ""), mode="eval"))
    if not math.isfinite(value):
        raise ValueError("result is not a finite number")
    return round(value, 6)


@dataclass
class Latency:
    """How long each tool takes: the default profile, an optional lookup override, a time scale."""

    lookup_s: float | None = None
    time_scale: float = 1.0
    overrides: Mapping[str, float] = field(default_factory=dict)

    def of(self, name: str) -> float:
        if name in self.overrides:
            seconds = float(self.overrides[name])
        elif self.lookup_s is not None and name in LOOKUPS:
            seconds = self.lookup_s
        else:
            seconds = LATENCY_S.get(name, 0.0)
        return seconds * self.time_scale


@dataclass
class World:
    """The mutable state of one task run (a fresh copy of the data above)."""

    latency: Latency = field(default_factory=Latency)
    outbox: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=lambda: dict(FILES))
    orders: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(ORDERS))
    calendar: dict[str, list[dict[str, str]]] = field(default_factory=lambda: copy.deepcopy(CALENDAR))
    thermostats: dict[str, float] = field(default_factory=dict)

    def tools(self) -> list[Tool]:
        """The assistant's toolbox: the same tools for every task, so the prompt prefix is shared."""
        lat = self.latency

        async def wait(name: str) -> None:
            seconds = lat.of(name)
            if seconds > 0:
                await asyncio.sleep(seconds)

        @tool(pure=True)
        async def get_weather(city: str) -> str:
            """Get the current weather in a city from a weather web service.

            Args:
                city: city name, e.g. Paris
            """
            await wait("get_weather")
            report = WEATHER.get(_key(city))
            if report is None:
                raise LookupError(f"no weather station found for {city!r}")
            return f"{city.strip().title()}: {report}"

        @tool(pure=True)
        async def get_exchange_rate(base: str, quote: str) -> float:
            """Get today's exchange rate from one currency to another (web service).

            Args:
                base: currency code to convert from, e.g. EUR
                quote: currency code to convert to, e.g. USD
            """
            await wait("get_exchange_rate")
            rate = RATES.get((base.strip().upper(), quote.strip().upper()))
            if rate is None:
                raise LookupError(f"no exchange rate available for {base}/{quote}")
            return rate

        @tool(pure=True)
        async def get_stock_price(symbol: str) -> float:
            """Get the latest share price of a stock in US dollars (web service).

            Args:
                symbol: ticker symbol, e.g. AAPL
            """
            await wait("get_stock_price")
            price = STOCKS.get(symbol.strip().upper())
            if price is None:
                raise LookupError(f"unknown ticker symbol {symbol!r}")
            return price

        @tool(pure=True)
        async def get_flight_status(flight: str) -> str:
            """Get the current status of a flight (airline web service).

            Args:
                flight: flight number, e.g. LH441
            """
            await wait("get_flight_status")
            status = FLIGHTS.get(flight.strip().upper().replace(" ", ""))
            if status is None:
                raise LookupError(f"unknown flight {flight!r}")
            return f"{flight.strip().upper()}: {status}"

        @tool(pure=True)
        async def track_package(tracking_number: str) -> str:
            """Get the delivery status of a package from the carrier's tracking service.

            Args:
                tracking_number: the tracking number, e.g. 1Z999
            """
            await wait("track_package")
            number = tracking_number.strip().upper()
            if number in BROKEN_PACKAGES:
                raise ConnectionError("tracking service unavailable (HTTP 503), try again later")
            status = PACKAGES.get(number)
            if status is None:
                raise LookupError(f"unknown tracking number {tracking_number!r}")
            return f"{number}: {status}"

        @tool(
            reads=["db/customers"],
            output_example={"id": "C-100", "name": "Jane Doe", "email": "jane@example.com", "city": "Rome"},
        )
        async def find_customer(name: str) -> dict[str, str]:
            """Look up a customer by full name in the customer database.

            Args:
                name: the customer's full name, e.g. Jane Doe
            """
            await wait("find_customer")
            found = CUSTOMERS.get(_key(name))
            if found is None:
                raise LookupError(f"no customer named {name!r}")
            return dict(found)

        @tool(
            reads=["db/orders/{order_id}"],
            output_example={
                "order_id": "1000",
                "customer": "Jane Doe",
                "item": "bookshelf",
                "total": 120.0,
                "status": "processing",
            },
        )
        async def get_order(order_id: str) -> dict[str, Any]:
            """Look up an order in the order database.

            Args:
                order_id: the order number, e.g. 1000
            """
            await wait("get_order")
            order = self.orders.get(order_id.strip().lstrip("#"))
            if order is None:
                raise LookupError(f"no order {order_id!r}")
            return dict(order)

        @tool(writes=["db/orders/{order_id}"])
        async def update_order_status(order_id: str, status: str) -> str:
            """Change the status of an order in the order database.

            Args:
                order_id: the order number, e.g. 1000
                status: one of processing, shipped, delivered, cancelled
            """
            await wait("update_order_status")
            order = self.orders.get(order_id.strip().lstrip("#"))
            if order is None:
                raise LookupError(f"no order {order_id!r}")
            new = _key(status)
            if new not in ORDER_STATUSES:
                raise ValueError(f"unknown status {status!r}; use one of {', '.join(ORDER_STATUSES)}")
            if order["status"] in ("delivered", "cancelled") and new != order["status"]:
                raise PermissionError(f"order {order['order_id']} is already {order['status']}")
            order["status"] = new
            return f"order {order['order_id']} is now {new}"

        @tool(reads=["db/inventory/{product}"])
        async def check_inventory(product: str) -> int:
            """Get how many units of a product are in stock in the warehouse database.

            Args:
                product: product name, e.g. bookshelf
            """
            await wait("check_inventory")
            name = _key(product)
            count = INVENTORY.get(name, INVENTORY.get(name.rstrip("s")))
            if count is None:
                raise LookupError(f"unknown product {product!r}")
            return count

        @tool(reads=["calendar/{date}"])
        async def list_events(date: str) -> list[dict[str, str]]:
            """List the events in the calendar on a date.

            Args:
                date: the date as YYYY-MM-DD
            """
            await wait("list_events")
            return [dict(e) for e in self.calendar.get(date.strip(), [])]

        @tool(writes=["calendar/{date}"])
        async def add_event(title: str, date: str, time: str) -> str:
            """Add an event to the calendar.

            Args:
                title: what the event is
                date: the date as YYYY-MM-DD
                time: the start time as HH:MM
            """
            await wait("add_event")
            self.calendar.setdefault(date.strip(), []).append({"title": title, "time": time.strip()})
            return f"added {title!r} on {date} at {time}"

        @tool(reads=["home/{room}/temperature"])
        async def get_room_temperature(room: str) -> float:
            """Get the temperature measured in a room of the house, in degrees Celsius.

            Args:
                room: the room, e.g. kitchen
            """
            await wait("get_room_temperature")
            value = ROOMS.get(_key(room))
            if value is None:
                raise LookupError(f"no sensor in {room!r}; rooms: {', '.join(ROOMS)}")
            return value

        @tool(writes=["home/{room}/thermostat"])
        async def set_thermostat(room: str, celsius: float) -> str:
            """Set the thermostat of a room of the house.

            Args:
                room: the room, e.g. kitchen
                celsius: the target temperature in degrees Celsius
            """
            await wait("set_thermostat")
            name = _key(room)
            if name not in ROOMS:
                raise LookupError(f"no thermostat in {room!r}; rooms: {', '.join(ROOMS)}")
            self.thermostats[name] = float(celsius)
            return f"{name} thermostat set to {celsius} C"

        @tool(reads=["files/{path}"])
        async def read_file(path: str) -> str:
            """Read a text file.

            Args:
                path: file name, e.g. notes.txt
            """
            await wait("read_file")
            if path.strip() not in self.files:
                raise FileNotFoundError(f"no such file: {path}")
            return self.files[path.strip()]

        @tool(writes=["files/{path}"])
        async def write_file(path: str, content: str) -> str:
            """Write a text file (replacing it if it exists).

            Args:
                path: file name, e.g. notes.txt
                content: the text to write
            """
            await wait("write_file")
            self.files[path.strip()] = content
            return f"wrote {len(content)} characters to {path}"

        @tool(writes=["outbox"])
        async def send_email(to: str, subject: str, body: str) -> str:
            """Send an email.

            Args:
                to: recipient address
                subject: the subject line
                body: the text of the email
            """
            await wait("send_email")
            address = to.strip().lower()
            if "@" not in address or address.endswith(REJECTED_DOMAINS):
                raise ConnectionRefusedError(f"mail relay rejected recipient {to!r}")
            self.outbox.append({"to": address, "subject": subject, "body": body})
            return f"email sent to {address}"

        @tool(pure=True)
        async def calculate(expression: str) -> float:
            """Evaluate an arithmetic expression, e.g. 250 * 1.08.

            Args:
                expression: numbers with + - * / ** and parentheses
            """
            await wait("calculate")
            return evaluate(expression)

        toolbox = [
            get_weather,
            get_exchange_rate,
            get_stock_price,
            get_flight_status,
            track_package,
            find_customer,
            get_order,
            update_order_status,
            check_inventory,
            list_events,
            add_event,
            get_room_temperature,
            set_thermostat,
            read_file,
            write_file,
            send_email,
            calculate,
        ]
        # each tool declares the latency it has, as a user who knows their tools would
        return [replace(t, latency_s=lat.of(t.name)) for t in toolbox]
