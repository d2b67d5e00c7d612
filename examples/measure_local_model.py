"""Sync vs async on the embedded local model: pass rates, wall times, placeholders passed.

Runs the demo tasks (``asyncfc.demo.TASKS``) with Qwen2.5-Coder through llama-server
(``asyncfc.local.ensure_server``), temperature 0 and seed 0, a few times per mode, and
prints one row per task and mode:

    .venv/bin/python examples/measure_local_model.py --runs 3
    .venv/bin/python examples/measure_local_model.py --runs 5 --tasks convert --delay-scale 0.1

"pass" means the final tool state is right (files / emails, each exactly once);
"fut passed" counts runs where a later call's raw arguments named a future (``fut_<n>``),
i.e. the model passed a placeholder on instead of a value; "speedup" is the sync mean wall
time over the async one. The model's steps take 1-20 s on a busy 2-core machine, so wall
times vary from run to run; the answers should not (temperature 0, fixed seed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import dataclass

from asyncfc import Agent, local
from asyncfc.demo import SYSTEM_PROMPT, TASKS, DemoTask, Errands, task_messages
from asyncfc.futures import REFERENCE
from asyncfc.models import OpenAIChatModel
from asyncfc.scheduler import Mode


@dataclass
class Outcome:
    passed: bool
    wall_s: float
    steps: int
    calls: int
    passed_future: bool
    problems: list[str]


async def run_once(
    server: local.LocalServer, task: DemoTask, mode: Mode, scale: float, max_steps: int
) -> Outcome:
    world = Errands(delay_scale=scale)
    async with OpenAIChatModel(
        server.model, base_url=server.base_url, temperature=0.0, seed=0, max_tokens=256
    ) as model:
        agent = Agent(model, world.tools(), mode=mode, system_prompt=SYSTEM_PROMPT, max_steps=max_steps)
        result = await agent.run(task_messages(task.prompt, mode))
    problems = task.problems(world)
    if result.stop_reason != "answer":
        problems.append(f"no final answer ({result.stop_reason})")
    return Outcome(
        passed=not problems,
        wall_s=result.wall_s,
        steps=result.steps,
        calls=len(result.calls),
        passed_future=any(REFERENCE.search(c.raw_arguments) for c in result.calls),
        problems=problems,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per task and mode (default 3)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(TASKS)}")
    parser.add_argument("--modes", default="sync,async", help="comma-separated modes (default sync,async)")
    parser.add_argument("--size", default="1.5b", choices=["0.5b", "1.5b"], help="local model (default 1.5b)")
    parser.add_argument(
        "--delay-scale", type=float, default=1.0, help="multiplies the tools' sleeps (default 1.0: 0.3-2 s)"
    )
    parser.add_argument("--max-steps", type=int, default=8, help="model steps per run (default 8)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print why each failed run failed")
    args = parser.parse_args()
    tasks = [TASKS[name] for name in args.tasks.split(",") if name]
    modes: list[Mode] = [m for m in ("sync", "parallel", "async") if m in args.modes.split(",")]
    try:
        server = local.ensure_server(args.size)
    except local.LocalModelError as exc:
        print(f"local model unavailable: {exc}", file=sys.stderr)
        return 3

    rows: dict[tuple[str, str], list[Outcome]] = {}
    for task in tasks:
        for mode in modes:
            for i in range(args.runs):
                out = asyncio.run(run_once(server, task, mode, args.delay_scale, args.max_steps))
                rows.setdefault((task.name, mode), []).append(out)
                status = "pass" if out.passed else "FAIL"
                print(f"  {task.name} {mode} run {i + 1}: {status} {out.wall_s:.1f} s", file=sys.stderr)
                if args.verbose and out.problems:
                    print(f"    {'; '.join(out.problems)}", file=sys.stderr)

    header = f"{'task':14} {'mode':6} {'pass':>5} {'wall mean s':>11} {'min':>6} {'max':>6} {'steps':>5} {'fut passed':>10} {'speedup':>7}"
    print(f"\nQwen2.5-Coder {args.size}, {args.runs} runs each, tool delay scale {args.delay_scale}")
    print(header)
    print("-" * len(header))
    for task in tasks:
        sync = rows.get((task.name, "sync"))
        for mode in modes:
            outs = rows[(task.name, mode)]
            walls = [o.wall_s for o in outs]
            mean = statistics.mean(walls)
            speedup = (
                f"{statistics.mean(o.wall_s for o in sync) / mean:.2f}x" if sync and mode != "sync" else "-"
            )
            print(
                f"{task.name:14} {mode:6} {sum(o.passed for o in outs):>2}/{len(outs):<2} {mean:>11.1f} "
                f"{min(walls):>6.1f} {max(walls):>6.1f} {statistics.mean(o.steps for o in outs):>5.1f} "
                f"{sum(o.passed_future for o in outs):>7}/{len(outs):<2} {speedup:>7}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
