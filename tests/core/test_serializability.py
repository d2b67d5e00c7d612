"""Guarantee 1: with honest annotations, async mode gives the results of running the calls one
by one in program order (sync mode), for random programs over a small shared store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncfc import tool
from asyncfc.agent import Agent
from asyncfc.mode import ModeName as Mode
from asyncfc.models.base import Message
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel, Turn, call_results, shown
from asyncfc.tools import Tool
from conftest import run

KEYS = ["a", "ab", "d", "d/e", "d/f"]
"""``a``/``ab`` must not conflict; ``d`` is the parent of ``d/e`` and ``d/f``."""
CHILDREN = ["e", "f"]


def subtree(store: dict[str, int], key: str) -> list[str]:
    return sorted(k for k in store if k == key or k.startswith(key + "/"))


def snapshot(store: dict[str, int], key: str) -> int:
    """A value that depends on every key under ``key``, in order."""
    out = 0
    for k in subtree(store, key):
        out = (out * 31 + store[k]) % 1_000_003
    return out


def make_tools(store: dict[str, int]) -> list[Tool]:
    """Every tool reads first, sleeps, then writes: a missed hazard shows as a wrong result."""

    @tool(reads=["store/{key}"])
    async def read(key: str, delay: float) -> int:
        await asyncio.sleep(delay)
        return snapshot(store, key)

    @tool(reads=["store/{key}"])
    def read_s(key: str, delay: float) -> int:
        time.sleep(delay)
        return snapshot(store, key)

    @tool(writes=["store/{key}"])
    async def write(key: str, value: int, delay: float) -> int:
        await asyncio.sleep(delay)
        for k in subtree(store, key):
            store[k] = value
        return value

    @tool(writes=["store/{key}"])
    def write_s(key: str, value: int, delay: float) -> int:
        time.sleep(delay)
        for k in subtree(store, key):
            store[k] = value
        return value

    @tool(reads=["store/{key}"], writes=["store/{key}"])
    async def rmw(key: str, delta: int, delay: float) -> int:
        old = {k: store[k] for k in subtree(store, key)}
        await asyncio.sleep(delay)
        for k, v in old.items():
            store[k] = (v * 3 + delta) % 1_000_003
        return snapshot(store, key)

    @tool(reads=["store/{key}"], writes=["store/{key}"])
    def rmw_s(key: str, delta: int, delay: float) -> int:
        old = {k: store[k] for k in subtree(store, key)}
        time.sleep(delay)
        for k, v in old.items():
            store[k] = (v * 3 + delta) % 1_000_003
        return snapshot(store, key)

    @tool(reads=["store/{src}"], writes=["store/{dst}"])
    async def copy(src: str, dst: str, delay: float) -> int:
        value = snapshot(store, src)
        await asyncio.sleep(delay)
        for k in subtree(store, dst):
            store[k] = value
        return value

    @tool(reads=["store"])
    async def total(delay: float) -> int:
        value = sum(store.values()) % 1_000_003
        await asyncio.sleep(delay)
        return value

    @tool  # unannotated: the root, runs alone
    def reset(delay: float) -> int:
        n = len(store)
        time.sleep(delay)
        for k in store:
            store[k] = 1
        return n

    @tool(pure=True)
    def compute(x: int, y: int, delay: float) -> int:
        time.sleep(delay)
        return (x * 7 + y) % 1_000_003

    @tool(pure=True)
    async def key_of(i: int, delay: float) -> str:
        await asyncio.sleep(delay)
        return KEYS[i % len(KEYS)]

    @tool(pure=True)
    async def child_of(i: int, delay: float) -> str:
        await asyncio.sleep(delay)
        return CHILDREN[i % len(CHILDREN)]

    return [read, read_s, write, write_s, rmw, rmw_s, copy, total, reset, compute, key_of, child_of]


@dataclass(frozen=True)
class Join:
    """A key written as text around a reference: ``d/`` + the result of a ``child_of`` call."""

    prefix: str
    ref: Ref


def as_turn(calls: Sequence[tuple[str, dict[str, Any]]]) -> Turn:
    """A scripted turn whose ``Join`` arguments are rendered as the model would write them."""

    def render(transcript: Sequence[Message]) -> list[ScriptedCall]:
        seen = call_results(transcript)
        out = []
        for name, args in calls:
            filled = {}
            for k, v in args.items():
                if isinstance(v, Join):
                    filled[k] = f"{v.prefix}{shown(v.ref, seen)}"
                else:
                    filled[k] = v
            out.append(ScriptedCall(name, filled))
        return out

    return render


@st.composite
def programs(draw: st.DrawFn) -> list[list[tuple[str, dict[str, Any]]]]:
    """Model steps of calls; references point only at calls of earlier steps."""
    steps: list[list[tuple[str, dict[str, Any]]]] = []
    ints: list[int] = []  # numbers (fut_n) of earlier calls with int results
    keys: list[int] = []  # ... with key results
    children: list[int] = []  # ... with child-name results
    n = 0
    for _ in range(draw(st.integers(1, 4))):
        step: list[tuple[str, dict[str, Any]]] = []
        new_ints, new_keys, new_children = [], [], []
        for _ in range(draw(st.integers(1, 4))):
            delay = draw(st.sampled_from([0.0, 0.0, 0.001, 0.002, 0.003]))

            def key(keys: list[int] = keys, children: list[int] = children) -> Any:
                choice = draw(st.integers(0, 9))
                if choice == 0 and keys:
                    return Ref(draw(st.sampled_from(keys)))
                if choice == 1 and children:
                    return Join("d/", Ref(draw(st.sampled_from(children))))
                return draw(st.sampled_from(KEYS))

            def number(ints: list[int] = ints) -> Any:
                if ints and draw(st.booleans()):
                    return Ref(draw(st.sampled_from(ints)))
                return draw(st.integers(0, 50))

            kind = draw(
                st.sampled_from(
                    ["read", "read_s", "write", "write_s", "rmw", "rmw_s", "copy", "total", "reset"]
                    + ["compute", "key_of", "child_of"]
                )
            )
            args: dict[str, Any] = {"delay": delay}
            if kind in ("read", "read_s"):
                args["key"] = key()
            elif kind in ("write", "write_s"):
                args.update(key=key(), value=number())
            elif kind in ("rmw", "rmw_s"):
                args.update(key=key(), delta=number())
            elif kind == "copy":
                args.update(src=key(), dst=key())
            elif kind == "compute":
                args.update(x=number(), y=number())
            elif kind in ("key_of", "child_of"):
                args["i"] = draw(st.integers(0, 9))
            step.append((kind, args))
            {"key_of": new_keys, "child_of": new_children}.get(kind, new_ints).append(
                n + 1
            )  # its future's number
            n += 1
        ints += new_ints
        keys += new_keys
        children += new_children
        steps.append(step)
    return steps


async def execute(
    mode: Mode, steps: list[list[tuple[str, dict[str, Any]]]]
) -> tuple[list[Any], dict[str, int]]:
    store = {k: i + 1 for i, k in enumerate(KEYS)}
    turns: list[Turn] = [as_turn(s) for s in steps]
    turns.append("done")
    # the fixed window these programs were written for (a scripted model that takes no time
    # makes every placeholder free under grace="auto")
    agent = Agent(ScriptedModel(turns), make_tools(store), mode=mode, max_steps=50, grace_s=0.5)
    try:
        result = await agent.run("run the program")
    finally:
        agent.executor.shutdown()
    assert result.stop_reason == "answer"
    calls = [(c.name, c.resolved_arguments, c.value, c.error) for c in result.calls]
    return calls, store


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(programs())
def test_async_equals_sync(steps: list[list[tuple[str, dict[str, Any]]]]) -> None:
    sync_calls, sync_store = run(execute("sync", steps))
    async_calls, async_store = run(execute("async", steps))
    assert all(err is None for *_, err in sync_calls), sync_calls
    assert async_calls == sync_calls
    assert async_store == sync_store
