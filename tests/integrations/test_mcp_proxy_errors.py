"""Long upstream errors through the MCP proxy stay valid JSON and keep their structured
content (issue 19, item 5): a 9-passenger ``book_reservation`` fails upstream with a JSON
error of about 3,000 characters and ``structuredContent``."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

pytest.importorskip("mcp")

import mcp.types as mt  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402

from asyncfc.integrations.mcp import Proxy, ProxyConfig, UpstreamPool, UpstreamSpec  # noqa: E402
from asyncfc.model_text import MAX_ERROR_CHARS  # noqa: E402
from integrations.test_mcp_proxy import SHOP  # noqa: E402

PREFIX = "book_reservation raised UpstreamToolError: "


async def _report(*_: Any) -> None:
    return None


def test_a_long_json_error_is_shortened_inside_its_values_and_keeps_structured_content() -> None:
    command = f"{sys.executable} {SHOP} --delay 0.05"

    async def main() -> None:
        # directly: the upstream's own error, whole
        params = StdioServerParameters(command=sys.executable, args=[str(SHOP), "--delay", "0.05"])
        async with Client(params) as direct:
            raw = await direct.call_tool("book_reservation", {"passengers": 9})
        assert raw.is_error and isinstance(raw.content[0], mt.TextContent)
        upstream_text = raw.content[0].text
        assert len(upstream_text) > MAX_ERROR_CHARS
        upstream_error = json.loads(upstream_text)
        assert raw.structured_content == upstream_error

        # through the proxy (grace long enough for the value to come back with the answer)
        async with UpstreamPool([UpstreamSpec(command, "shop")]) as pool:
            tools, _ = pool.proxy_tools()
            proxy = Proxy(tools, ProxyConfig(grace_s=30.0, timeout_s=30.0))
            try:
                result = await proxy.call_tool("s", "book_reservation", {"passengers": 9}, _report)
                small = await proxy.call_tool("s", "book_reservation", {"passengers": 2}, _report)
            finally:
                await proxy.sessions.aclose()
        assert result.is_error and isinstance(result.content[0], mt.TextContent)
        body = json.loads(result.content[0].text)
        message = body["error"]["message"]
        assert body["error"]["type"] == "tool_error" and message.startswith(PREFIX)
        assert len(message) <= MAX_ERROR_CHARS
        shown = json.loads(message[len(PREFIX) :])  # still JSON: cut inside its values
        assert shown["error"] == "too many passengers" and shown["limit"] == 5
        assert "truncated" in shown["policy"] and shown["policy"].startswith("A reservation holds")
        assert shown["passengers"][0]["first_name"] == "Passenger0"
        # the error result keeps the upstream's structured content, whole
        assert result.structured_content == upstream_error
        assert len(result.structured_content["passengers"]) == 9
        assert not small.is_error and small.structured_content is None

    asyncio.run(main())
