"""``asyncfc bench proxy``: what a call through ``asyncfc mcp serve`` costs over calling the
same upstream MCP server directly, both over stdio, in one run.

Two clients (the official ``mcp`` SDK): one talks to an upstream server directly, the other
to the proxy in front of another copy of the same upstream. Calls to an instant tool
alternate between the two (direct, proxied, proxied, direct, ...), so both see the same
machine load; each call is timed on the client from request to result. The proxy's cost is
the difference of the per-call medians (and of the p90s). Budget: +500 microseconds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .stats import nearest_rank

__all__ = ["BUDGET_US", "measure", "serve_upstream"]

BUDGET_US = 500.0
"""What the proxy may add to a call's median, in microseconds."""

TOOL = "echo"


def serve_upstream() -> None:
    """The upstream: an MCP server over stdio with one instant, read-only tool."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("bench-upstream", log_level="CRITICAL")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def echo(text: str, n: int) -> dict[str, Any]:
        """Returns its arguments (instant)."""
        return {"text": text, "n": n}

    server.run("stdio")


def _summary(samples_us: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_us)
    return {
        "median_us": round(nearest_rank(ordered, 0.5), 1),
        "p90_us": round(nearest_rank(ordered, 0.9), 1),
        "mean_us": round(sum(ordered) / len(ordered), 1),
    }


async def measure(calls: int = 2000, warmup: int = 200, text_chars: int = 64) -> dict[str, Any]:
    """Per-call client-side latency, direct and through the proxy, interleaved."""
    from mcp import Client, StdioServerParameters

    upstream = f"{sys.executable} -m asyncfc_bench.proxy upstream"
    env = dict(os.environ)
    direct_params = StdioServerParameters(
        command=sys.executable, args=["-m", "asyncfc_bench.proxy", "upstream"], env=env
    )
    proxy_params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "asyncfc.cli", "mcp", "serve", "--upstream", upstream],
        env=env,
    )
    text = "x" * text_chars
    samples: dict[str, list[float]] = {"direct": [], "proxied": []}
    async with Client(direct_params) as direct, Client(proxy_params) as proxied:
        clients = {"direct": direct, "proxied": proxied}

        async def one(system: str, n: int) -> float:
            start = time.perf_counter_ns()
            result = await clients[system].call_tool(TOOL, {"text": text, "n": n})
            took = (time.perf_counter_ns() - start) / 1000
            if result.is_error:
                raise RuntimeError(f"{system} call failed: {result.content}")
            return took

        for i in range(warmup):
            await one("direct", i)
            await one("proxied", i)
        for i in range(calls):
            order = ("direct", "proxied") if i % 2 == 0 else ("proxied", "direct")
            for system in order:
                samples[system].append(await one(system, i))
    direct_s, proxied_s = _summary(samples["direct"]), _summary(samples["proxied"])
    extra_median = round(proxied_s["median_us"] - direct_s["median_us"], 1)
    return {
        "calls": calls,
        "warmup": warmup,
        "tool": TOOL,
        "transport": "stdio",
        "direct": direct_s,
        "proxied": proxied_s,
        "difference": {
            "median_us": extra_median,
            "p90_us": round(proxied_s["p90_us"] - direct_s["p90_us"], 1),
            "mean_us": round(proxied_s["mean_us"] - direct_s["mean_us"], 1),
        },
        "budget_us": BUDGET_US,
        "within_budget": extra_median <= BUDGET_US,
        "load_average": round(os.getloadavg()[0], 2),
    }


def run(calls: int = 2000, warmup: int = 200) -> dict[str, Any]:
    return asyncio.run(measure(calls, warmup))


if __name__ == "__main__":  # python -m asyncfc_bench.proxy upstream
    if sys.argv[1:] == ["upstream"]:
        serve_upstream()
    else:
        sys.exit("usage: python -m asyncfc_bench.proxy upstream")
