"""Plain tools/call requests answered without the SDK's dispatch (issue 19, item 5: proxy cost).

Raw JSON-RPC lines over the proxy's stdio, in both protocol eras: a call the proxy takes
itself gets the very bytes the SDK would have written (compared against the same call
with a progress token, which the SDK serves), a cancelled call is never answered, and
requests the direct path must leave alone still reach the SDK.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("mcp")

import mcp.types as mt  # noqa: E402

from asyncfc.integrations.mcp.direct import DirectCalls  # noqa: E402
from integrations.test_mcp_proxy import SHOP  # noqa: E402
from integrations.test_mcp_transport import INIT, INITIALIZED, RawStdio  # noqa: E402

SHOP_CMD = f"{sys.executable} {SHOP} --delay 0.3"
MODERN_META = {
    mt.PROTOCOL_VERSION_META_KEY: "2026-07-28",
    mt.CLIENT_INFO_META_KEY: {"name": "raw", "version": "1"},
    mt.CLIENT_CAPABILITIES_META_KEY: {},
}


def call(request_id: Any, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> bytes:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta is not None:
        params["_meta"] = meta
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


class Lines(RawStdio):
    def raw(self) -> bytes:
        line = self.lines.get(timeout=60)
        assert line, "the proxy exited"
        return line


@pytest.fixture(params=["handshake", "modern"])
def proxy(request: pytest.FixtureRequest) -> Iterator[tuple[Lines, dict[str, Any] | None]]:
    lines = Lines("--upstream", SHOP_CMD, "--grace", "0.05")
    try:
        meta: dict[str, Any] | None = None
        if request.param == "handshake":
            lines.send(json.dumps(INIT).encode())
            assert lines.receive()["id"] == 0
            lines.send(json.dumps(INITIALIZED).encode())
        else:
            meta = MODERN_META
        yield lines, meta
    finally:
        lines.close()


def _without_future_id(line: bytes) -> bytes:
    return re.sub(rb"fut_\d+", b"fut_N", line)


def test_a_direct_answer_is_the_sdks_answer_byte_for_byte(proxy: tuple[Lines, dict[str, Any] | None]) -> None:
    lines, meta = proxy
    lines.send(call(1, "quick_stock", {"item": "pear"}, meta))
    direct = lines.raw()
    # a progress token makes it a call the SDK serves (the direct path leaves it alone)
    lines.send(call(1, "quick_stock", {"item": "pear"}, {**(meta or {}), "progressToken": "p"}))
    through_sdk = lines.raw()
    assert json.loads(direct)["result"]["isError"] is False
    assert _without_future_id(direct) == _without_future_id(through_sdk)
    # an error value too (a tool the upstream does not have)
    lines.send(call(2, "no_such_tool", {}, meta))
    direct = lines.raw()
    lines.send(call(2, "no_such_tool", {}, {**(meta or {}), "progressToken": "p"}))
    assert json.loads(direct)["result"]["isError"] is True
    assert _without_future_id(direct) == _without_future_id(lines.raw())


def test_a_cancelled_direct_call_is_never_answered(proxy: tuple[Lines, dict[str, Any] | None]) -> None:
    lines, meta = proxy
    lines.send(call(1, "lookup_price", {"item": "fig"}, meta))
    placeholder = json.loads(json.loads(lines.raw())["result"]["content"][0]["text"])
    assert placeholder["status"] == "pending"
    # two waits on the same future: the first is cancelled, the second answered when it resolves
    lines.send(call(2, "await_future", {"ids": [placeholder["future"]]}, meta))
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}
    lines.send(json.dumps(cancel).encode())
    lines.send(call(3, "await_future", {"ids": [placeholder["future"]]}, meta))
    answered = json.loads(lines.raw())
    assert answered["id"] == 3 and "4.25" in answered["result"]["content"][0]["text"]
    # had request 2 not been cancelled, its answer would be written before this one's
    lines.send(call(4, "quick_stock", {"item": "fig"}, meta))
    assert json.loads(lines.raw())["id"] == 4


class _Recorder:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    async def write(self, line: bytes) -> None:
        self.lines.append(line)


def _request(method: str, params: dict[str, Any] | None, id_: int = 1) -> mt.JSONRPCRequest:
    return mt.JSONRPCRequest(jsonrpc="2.0", id=id_, method=method, params=params)


def test_what_the_direct_path_leaves_to_the_sdk() -> None:
    recorder = _Recorder()
    modern = DirectCalls(None, "stdio", recorder.write, {})  # type: ignore[arg-type]
    assert not modern.take(_request("server/discover", {"_meta": MODERN_META}))
    plain = {"name": "t", "arguments": {}, "_meta": MODERN_META}
    for params in (
        {**plain, "_meta": {**MODERN_META, "progressToken": 1}},  # progress goes through the SDK
        {
            **plain,
            "_meta": {
                **MODERN_META,
                mt.CLIENT_CAPABILITIES_META_KEY: {"extensions": {"io.modelcontextprotocol/tasks": {}}},
            },
        },
        {**plain, "_meta": {**MODERN_META, mt.PROTOCOL_VERSION_META_KEY: "2025-06-18"}},
        {**plain, "inputResponses": {}},  # anything else in the params
        {**plain, "arguments": [1]},  # malformed: the SDK's error
        {"arguments": {}, "_meta": MODERN_META},
        None,
    ):
        assert not modern.take(_request("tools/call", params)), params
    assert not modern.take(_request("tools/list", {"_meta": MODERN_META}))

    handshake = DirectCalls(None, "stdio", recorder.write, {})  # type: ignore[arg-type]
    assert not handshake.take(_request("initialize", {}))
    # before notifications/initialized the SDK answers (with its not-initialized error)
    assert not handshake.take(_request("tools/call", {"name": "t"}))
    assert not handshake.take(mt.JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized"))
    # a handshake connection refuses 2026 envelopes: that is the SDK's answer to give
    assert not handshake.take(_request("tools/call", plain))
    assert recorder.lines == []
