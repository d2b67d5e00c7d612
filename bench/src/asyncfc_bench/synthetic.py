"""The synthetic workload: independent chains of dependent calls, in every mode.

Each of ``chains`` chains has ``length`` calls; every call takes the previous call of its
chain as an argument (a future in async mode, the value otherwise) and appends its result
to the chain's list in a shared store. The scripted model emits one level of all chains
per step (parallel function calling), decoding ``decode_s`` per call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncfc.agent import Agent, RunResult
from asyncfc.grace import GraceOption
from asyncfc.mode import ModeName
from asyncfc.models.base import Model
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel, Turn
from asyncfc.tools import Tool, tool
from asyncfc_bench.ideal import IdealCall, IdealStep, ideal_time
from asyncfc_bench.stats import efficiency

__all__ = [
    "MODES",
    "Workload",
    "run_mode",
    "run_synthetic",
    "run_synthetic_server",
]

MODES: tuple[ModeName, ...] = ("sync", "parallel", "async")


@dataclass(frozen=True)
class Workload:
    chains: int = 4
    length: int = 3
    delay_s: float = 0.2
    decode_s: float = 0.05

    def turns(self) -> list[Turn]:
        turns: list[Turn] = []
        for level in range(self.length):
            turns.append(
                [
                    ScriptedCall(
                        "step",
                        {
                            "chain": c,
                            "index": level,
                            "previous": Ref((level - 1) * self.chains + c + 1) if level else 0,
                        },
                    )
                    for c in range(self.chains)
                ]
            )
        turns.append("All chains are complete.")
        return turns

    def ideal_s(self) -> float:
        steps = [
            IdealStep(
                decode_s=self.chains * self.decode_s,
                calls=[
                    IdealCall(
                        self.delay_s,
                        deps=[(level - 1) * self.chains + c] if level else [],
                        emit_offset_s=(c + 1) * self.decode_s,
                    )
                    for c in range(self.chains)
                ],
            )
            for level in range(self.length)
        ]
        return ideal_time(steps, final_decode_s=self.decode_s)

    def tools(self, store: dict[int, list[int]]) -> list[Tool]:
        delay = self.delay_s

        @tool(reads=[], writes=["chains/{chain}"])
        async def step(chain: int, index: int, previous: int) -> int:
            """Advance one chain by one step; the result depends on the previous step's result."""
            await asyncio.sleep(delay)
            value = (previous * 31 + chain * 7 + index + 1) % 1_000_003
            store.setdefault(chain, []).append(value)
            return value

        return [step]

    def model(self) -> ScriptedModel:
        return ScriptedModel(self.turns(), call_s=self.decode_s, text_s=self.decode_s)


def _fingerprint(result: RunResult, store: dict[int, list[int]]) -> Any:
    calls = [(c.name, c.resolved_arguments, c.value, c.error) for c in result.calls]
    return calls, {k: list(v) for k, v in sorted(store.items())}


async def run_mode(
    workload: Workload, mode: ModeName, model: Model | None = None, **agent_options: Any
) -> tuple[RunResult, dict[int, list[int]]]:
    store: dict[int, list[int]] = {}
    agent = Agent(model or workload.model(), workload.tools(store), mode=mode, **agent_options)
    result = await agent.run("Advance every chain to the end.")
    return result, store


async def run_synthetic(
    workload: Workload,
    modes: Sequence[ModeName] = MODES,
    model_factory: Callable[[], Model] | None = None,
    executor: str = "threads",
    grace: GraceOption = "auto",
) -> dict[str, Any]:
    """Run the workload once per mode and compare wall times with the ideal bound."""
    from asyncfc.executors import make_executor

    out: dict[str, Any] = {
        "workload": workload.__dict__.copy(),
        "executor": executor,
        "grace": grace if isinstance(grace, (int, float, str)) else repr(grace),
        "modes": {},
    }
    runner = make_executor(executor)
    prints: dict[str, Any] = {}
    results: dict[str, RunResult] = {}
    for mode in modes:
        t0 = time.perf_counter()
        result, store = await run_mode(
            workload, mode, model_factory() if model_factory else None, executor=runner, grace=grace
        )
        wall = time.perf_counter() - t0
        results[mode] = result
        prints[mode] = _fingerprint(result, store)
        out["modes"][mode] = {
            "wall_s": round(wall, 4),
            "model_s": round(result.model_s, 4),
            "steps": result.steps,
            "calls": len(result.calls),
            "errors": sum(c.error is not None for c in result.calls),
        }
    await runner.close()
    ideal = workload.ideal_s()
    out["ideal_s"] = round(ideal, 4)
    base = out["modes"].get("sync", {}).get("wall_s")
    out["speedup"] = {
        m: round(base / v["wall_s"], 3) for m, v in out["modes"].items() if base and m != "sync"
    }
    if base:
        out["ideal_speedup"] = round(base / ideal, 3)
        if "async" in out["modes"]:
            share = efficiency(base, out["modes"]["async"]["wall_s"], ideal)
            if share is not None:
                out["efficiency"] = round(share, 3)
    if "async" in out["modes"]:
        out["async_vs_ideal"] = round(out["modes"]["async"]["wall_s"] / ideal, 3)
    fingerprints = list(prints.values())
    out["consistent"] = all(f == fingerprints[0] for f in fingerprints) and all(
        v["errors"] == 0 for v in out["modes"].values()
    )
    out["_results"] = results
    return out


WIRES = ("chat", "responses", "responses-native")
"""``--wire`` choices: chat completions, the Responses API, the Responses API with native
async tools (``async: true``; asyncfc's async mode then sends no placeholders)."""


async def run_synthetic_server(
    workload: Workload, modes: Sequence[ModeName] = MODES, wire: str = "chat", grace: GraceOption = "auto"
) -> dict[str, Any]:
    """The same workload through real HTTP: the simulated-decode server and the OpenAI adapter
    of ``wire`` (one of :data:`WIRES`).

    Decode is paced in tokens (4 characters each) at the rate that makes one first-level
    call take ``decode_s``. The same pacing is replayed in-process with a
    :class:`ScriptedModel`, and the difference in model time per request is the adapter
    overhead (SDK, HTTP, SSE parsing), reported as ``adapter_overhead_ms``.
    """
    from asyncfc.models.openai_chat import OpenAIChatModel
    from asyncfc.models.openai_responses import OpenAIResponsesModel
    from asyncfc.testing.scripted import tokens_of
    from asyncfc.testing.simserver import SimServer

    first = json.dumps({"chain": 0, "index": 0, "previous": 0})
    rate = tokens_of("step" + first) / workload.decode_s
    servers: list[SimServer] = []
    models: list[OpenAIChatModel | OpenAIResponsesModel] = []
    if wire not in WIRES:
        raise ValueError(f"unknown wire {wire!r}: one of {', '.join(WIRES)}")

    def through_server() -> Model:
        server = SimServer(workload.turns(), tokens_per_s=rate).start()
        servers.append(server)
        model: OpenAIChatModel | OpenAIResponsesModel
        if wire == "chat":
            model = OpenAIChatModel("sim-model", base_url=server.base_url)
        else:
            native = wire == "responses-native"
            model = OpenAIResponsesModel("sim-model", base_url=server.base_url, native_async_tools=native)
        models.append(model)
        return model

    try:
        data = await run_synthetic(workload, modes, through_server, grace=grace)
        local = await run_synthetic(
            workload, modes, lambda: ScriptedModel(workload.turns(), token_s=1 / rate), grace=grace
        )
    finally:
        for model in models:
            await model.aclose()
        for server in servers:
            server.stop()
    overheads = [
        (data["modes"][m]["model_s"] - local["modes"][m]["model_s"]) / data["modes"][m]["steps"]
        for m in data["modes"]
    ]
    data["transport"] = "http+openai-sdk" if wire == "chat" else "http+openai-sdk+responses"
    data["wire"] = wire
    data["tokens_per_s"] = round(rate, 1)
    data["in_process_modes"] = local["modes"]
    data["adapter_overhead_ms"] = round(1000 * sum(overheads) / len(overheads), 3)
    data["consistent"] = data["consistent"] and local["consistent"]
    return data
