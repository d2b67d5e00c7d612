"""The MCP proxy answers every request, whatever its transport cannot parse (issue 19, item 4).

Raw JSON-RPC over the proxy's stdin/stdout and over streamable HTTP (httpx), so nothing on
the client side can paper over a dropped message: a request nested 300 or 100,000 levels
deep, invalid JSON, a line over the size limit, each answered with a JSON-RPC error that
carries the request's id, and the next good call answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from queue import Empty, Queue
from typing import Any

import pytest

pytest.importorskip("mcp")

import httpx  # noqa: E402

from asyncfc.integrations.mcp.transport import MAX_LINE_BYTES, parse_line, scan_id  # noqa: E402
from integrations.test_mcp_proxy import PROXY, SHOP, http_proxy  # noqa: E402

SHOP_FAST = f"{sys.executable} {SHOP} --delay 0.05"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def deep_call(request_id: Any, depth: int) -> bytes:
    """A tools/call whose arguments nest ``depth`` arrays deep (id first, as SDK clients write it)."""
    arguments = b'{"item": ' + b"[" * depth + b"]" * depth + b"}"
    head = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call"})[:-1].encode()
    return head + b', "params": {"name": "quick_stock", "arguments": ' + arguments + b"}}"


def good_call(request_id: Any, item: str = "pear") -> bytes:
    params = {"name": "quick_stock", "arguments": {"item": item}}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


# -- unit: the id scan and the line parser -------------------------------------------


def test_scan_finds_the_top_level_id_at_any_depth() -> None:
    assert scan_id(deep_call(7, 100_000).decode()).id == 7
    assert scan_id(deep_call("req-1", 300).decode()).id == "req-1"
    # an "id" nested inside params is not the request's
    nested = '{"jsonrpc": "2.0", "method": "x", "params": {"id": 5, "a": [[[' + "]]]}, " + '"id": "top"}'
    scan = scan_id(nested)
    assert scan.id == "top" and scan.has_method
    # the id after the deep part: found when the scan reaches it, not beyond its bound
    late = '{"params": ' + "[" * 1000 + "]" * 1000 + ', "method": "m", "id": 3}'
    assert scan_id(late).id == 3 and scan_id(late, limit=100).id is None
    # ids JSON-RPC does not allow are not recovered
    assert scan_id('{"id": [1], "method": "m"}').id is None
    assert scan_id('{"id": true, "method": "m"}').id is None
    assert scan_id('{"id": "a\\"b", "method": "m"}').id == 'a"b'
    assert scan_id("not json at all").id is None
    # a notification (method, no id) is recognised when the scan read it all
    assert scan_id(
        '{"jsonrpc": "2.0", "method": "notifications/x", "params": ' + "[" * 300 + "]" * 300 + "}"
    ).is_notification


def test_bad_lines_get_errors_with_their_ids_and_notifications_none() -> None:
    for depth in (300, 100_000):
        bad = parse_line(deep_call(depth, depth))
        assert not hasattr(bad, "message")
        reply = json.loads(bad.reply)  # type: ignore[union-attr]
        assert reply["id"] == depth and reply["error"]["code"] == -32700
        assert "nests deeper" in reply["error"]["message"]
    invalid = json.loads(parse_line(b'{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {').reply)  # type: ignore[union-attr]
    assert invalid["id"] == 9 and invalid["error"]["code"] == -32700
    shapeless = json.loads(parse_line(b'{"jsonrpc": "2.0", "id": 4}').reply)  # type: ignore[union-attr]
    assert shapeless["id"] == 4 and shapeless["error"]["code"] == -32600
    garbage = json.loads(parse_line(b"\x00garbage").reply)  # type: ignore[union-attr]
    assert garbage["id"] is None
    too_long = json.loads(parse_line(good_call(11)[:1000], total=MAX_LINE_BYTES + 1).reply)  # type: ignore[union-attr]
    assert too_long["id"] == 11 and "limit" in too_long["error"]["message"]
    notification = (
        b'{"jsonrpc": "2.0", "method": "notifications/x", "params": ' + b"[" * 300 + b"]" * 300 + b"}"
    )
    assert parse_line(notification).reply is None  # type: ignore[union-attr]
    # invalid UTF-8 inside a string is replaced, as the SDK's transport does, not refused
    assert hasattr(parse_line(good_call(1, "pe\udcffar").replace(b"\\udcff", b"\xff")), "message")


# -- end to end: stdio ---------------------------------------------------------------


class RawStdio:
    """The proxy as a child process, spoken to line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*PROXY, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.lines: Queue[bytes] = Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The next message; 60 s is a hang, far past an answer that takes milliseconds."""
        try:
            line = self.lines.get(timeout=60)
        except Empty:
            raise AssertionError("the proxy did not answer (the request was dropped)") from None
        assert line, "the proxy exited"
        body: dict[str, Any] = json.loads(line)
        return body

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.pump.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def stdio_raw() -> Iterator[RawStdio]:
    proxy = RawStdio("--upstream", SHOP_FAST)
    try:
        proxy.send(json.dumps(INIT).encode())
        assert proxy.receive()["id"] == 0
        proxy.send(json.dumps(INITIALIZED).encode())
        yield proxy
    finally:
        proxy.close()


def _value(reply: dict[str, Any]) -> Any:
    return json.loads(reply["result"]["content"][0]["text"])["value"]


def test_stdio_answers_requests_it_cannot_parse_and_keeps_serving(stdio_raw: RawStdio) -> None:
    proxy = stdio_raw
    for n, line in enumerate(
        [
            deep_call(1, 300),
            deep_call("deep", 100_000),
            b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": ',  # cut short
            b'{"jsonrpc": "2.0", "id": 4}',  # JSON, but no JSON-RPC message
        ]
    ):
        proxy.send(line)
        reply = proxy.receive()
        expect = [1, "deep", 3, 4][n]
        assert reply["id"] == expect and "error" in reply, reply
        # the following good call is answered
        proxy.send(good_call(100 + n))
        after = proxy.receive()
        assert after["id"] == 100 + n and _value(after) == 4
    # a model-depth call that parses is the runtime's to refuse, as an error value
    proxy.send(deep_call(9, 100))
    refused = json.loads(proxy.receive()["result"]["content"][0]["text"])
    assert refused["error"]["type"] == "invalid_arguments" and "nest" in refused["error"]["message"]


def test_stdio_answers_a_line_over_the_size_limit(stdio_raw: RawStdio) -> None:
    proxy = stdio_raw
    item = b"x" * (MAX_LINE_BYTES + 1024)
    proxy.send(
        b'{"jsonrpc": "2.0", "id": "huge", "method": "tools/call", "params": {"arguments": {"item": "'
        + item
        + b'"}}}'
    )
    reply = proxy.receive()
    assert reply["id"] == "huge" and reply["error"]["code"] == -32700 and "limit" in reply["error"]["message"]
    proxy.send(good_call(2))
    assert _value(proxy.receive()) == 4


# -- end to end: streamable HTTP -----------------------------------------------------


def _sse_or_json(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                body: dict[str, Any] = json.loads(line[5:])
                return body
        raise AssertionError(f"no data in {response.text!r}")
    out: dict[str, Any] = response.json()
    return out


def test_http_answers_requests_it_cannot_parse_with_their_ids() -> None:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    with http_proxy("--upstream", SHOP_FAST) as (url, _proc), httpx.Client(timeout=60) as http:
        init = http.post(url, content=json.dumps(INIT), headers=headers)
        session = {**headers, "mcp-session-id": init.headers["mcp-session-id"]}
        version = _sse_or_json(init)["result"]["protocolVersion"]
        session["mcp-protocol-version"] = version
        assert http.post(url, content=json.dumps(INITIALIZED), headers=session).status_code == 202
        for n, body in enumerate([deep_call(1, 300), deep_call("deep", 100_000)]):
            reply = http.post(url, content=body, headers=session)
            assert reply.status_code == 400
            error = reply.json()
            assert error["id"] == [1, "deep"][n] and error["error"]["code"] == -32700
            good = _sse_or_json(http.post(url, content=good_call(10 + n), headers=session))
            assert good["id"] == 10 + n and _value(good) == 4
