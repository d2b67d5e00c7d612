"""Upstream MCP servers for the proxy tests, written with the SDK's MCPServer (FastMCP).

``python shop.py [--role shop|files] [--http PORT] [--name NAME] [--delay S]``: stdio by
default. The shop has slow read-only lookups, a state-changing tool, a tool that fails,
one that hangs, one that fails with a long JSON error and structured
content, one that reports progress, one without annotations and one that kills
the server; the files server has per-path writes and a tool that stalls past its timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False)


def build(name: str, delay: float) -> MCPServer:
    server = MCPServer(name, log_level="CRITICAL")
    orders: list[dict[str, Any]] = []
    events: list[str] = []
    prices = {"apple": 1.5, "pear": 2.0, "fig": 4.25}

    @server.tool(annotations=READ_ONLY)
    async def lookup_price(item: str) -> dict[str, Any]:
        """Price of one item (slow)."""
        start = time.monotonic()
        await asyncio.sleep(delay)
        if item not in prices:
            raise ToolError(f"no such item: {item}")
        return {"item": item, "price": prices[item], "start": start, "end": time.monotonic()}

    @server.tool(annotations=READ_ONLY)
    def quick_stock(item: str) -> int:
        """Units in stock (instant)."""
        return len(item)

    @server.tool(annotations=WRITES)
    async def place_order(item: str, price: float, qty: int = 1) -> dict[str, Any]:
        """Order an item at a price (state-changing)."""
        start = time.monotonic()
        await asyncio.sleep(delay / 4)
        order = {"n": len(orders) + 1, "item": item, "total": price * qty, "start": start}
        orders.append(order)
        return order

    @server.tool(annotations=READ_ONLY)
    def list_orders() -> list[dict[str, Any]]:
        """Orders placed so far."""
        return orders

    @server.tool(annotations=WRITES)
    def fail(reason: str) -> str:
        """Always fails."""
        raise ToolError(f"refused: {reason}")

    @server.tool(annotations=WRITES)
    def book_reservation(passengers: int) -> CallToolResult:
        """Books seats; more than 5 passengers fail with a long JSON error and structured content."""
        if passengers <= 5:
            return CallToolResult(content=[TextContent(type="text", text="booked")])
        detail = {
            "error": "too many passengers",
            "limit": 5,
            "passengers": [
                {"first_name": f"Passenger{i}", "last_name": "Longname" * 12, "dob": "1990-01-01"}
                for i in range(passengers)
            ],
            "policy": "A reservation holds at most five passengers. " * 30,
        }
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(detail))],
            structured_content=detail,
            is_error=True,
        )

    @server.tool(annotations=READ_ONLY)
    async def hang(tag: str) -> str:
        """Never returns (until cancelled); records the cancellation."""
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append(f"cancelled {tag}")
            raise
        return "unreachable"

    @server.tool(annotations=READ_ONLY)
    def get_events() -> list[str]:
        """What happened to hung calls."""
        return events

    @server.tool(annotations=READ_ONLY)
    async def count_up(n: int, ctx: Context) -> int:
        """Counts to n, reporting progress at each step."""
        for i in range(n):
            await ctx.report_progress(i + 1, n, f"step {i + 1}")
            await asyncio.sleep(0.02)
        return n

    @server.tool()
    def untagged(x: str) -> str:
        """No annotations at all: the proxy must treat it as touching everything."""
        return x.upper()

    @server.tool(annotations=WRITES)
    def crash() -> str:
        """Kills the server process."""
        os._exit(3)

    return server


def build_files(name: str, delay: float) -> MCPServer:
    """The second upstream: files written per path, and a tool that stalls."""
    server = MCPServer(name, log_level="CRITICAL")
    files: dict[str, str] = {}
    stalls: list[str] = []

    @server.tool(annotations=WRITES)
    async def write_file(path: str, text: str) -> dict[str, Any]:
        """Write a file (the tests' TOML file gives it per-path write sets)."""
        start = time.monotonic()
        await asyncio.sleep(delay)
        files[path] = text
        return {"path": path, "bytes": len(text), "start": start, "end": time.monotonic()}

    @server.tool(annotations=READ_ONLY)
    def read_file(path: str) -> str:
        """Read a file."""
        if path not in files:
            raise ToolError(f"no such file: {path}")
        return files[path]

    @server.tool(annotations=READ_ONLY)
    async def stall(tag: str) -> str:
        """Never returns (until cancelled); the tests give it a short timeout."""
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stalls.append(f"cancelled {tag}")
            raise
        return "unreachable"

    @server.tool(annotations=READ_ONLY)
    def get_stalls() -> list[str]:
        """What happened to stalled calls."""
        return stalls

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None, help="serve streamable HTTP on this port")
    parser.add_argument("--name", default="shop")
    parser.add_argument("--delay", type=float, default=0.6)
    parser.add_argument("--role", choices=["shop", "files"], default="shop")
    args = parser.parse_args()
    server = (build if args.role == "shop" else build_files)(args.name, args.delay)
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", port=args.http)


if __name__ == "__main__":
    main()
