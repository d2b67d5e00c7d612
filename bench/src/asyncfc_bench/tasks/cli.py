"""``asyncfc bench tasks``: the real-model task suite in each mode.

Exit codes: 0 the suite ran (whatever the pass rates); 1 a consistency check failed (a
call never resolved or was never delivered); 2 bad usage; 3 the model is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from asyncfc.cli.options import non_negative_float, positive_float, positive_int
from asyncfc.mode import ModeName

__all__ = [
    "add_parser",
    "cmd_bench_tasks",
    "latencies",
]


def latencies(text: str) -> list[float]:
    """``--lookup-latency`` values: seconds, or several comma-separated (a sweep), each once."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expected seconds, or seconds separated by commas, got {text!r}")
    values = [non_negative_float(p) for p in parts]
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a latency is given twice in {text!r}")
    return values


def add_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Register ``tasks`` on the ``bench`` sub-parsers (its handler is ``args.func``)."""
    from asyncfc.agent import Delivery
    from asyncfc.cli.options import parse_modes

    p: argparse.ArgumentParser = bench_subparsers.add_parser(
        "tasks",
        help="real-model task suite (35 tasks, every shape), judged by final state",
        description="Everyday assistant tasks (fan-out, chains, fan-in, decisions, failing tools, "
        "follow-ups, no tool) on a real model in each mode, with realistic tool latency; judged by "
        "the final tool state and call results. Default model: the embedded local model.",
    )
    p.add_argument("--model", help="model name at --base-url (default: the embedded local model)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: the embedded llama-server)")
    p.add_argument("--api-key", help="API key for --base-url (default: $OPENAI_API_KEY or none)")
    p.add_argument(
        "--size", choices=["0.5b", "1.5b"], default="1.5b", help="embedded model size (default 1.5b)"
    )
    p.add_argument(
        "--modes", type=parse_modes, default=["sync", "async"], help="comma-separated (default sync,async)"
    )
    p.add_argument(
        "--delivery", choices=list(get_args(Delivery)), help="async delivery (default: the agent's)"
    )
    p.add_argument("--runs", type=positive_int, default=1, help="repetitions of the whole suite (default 1)")
    p.add_argument("--tasks", help="subset by name or 0-based index, comma-separated (see --list)")
    p.add_argument(
        "--lookup-latency",
        type=latencies,
        metavar="SECONDS",
        help="latency of every lookup tool (default: web 1-3 s, database 0.2 s); several, comma-separated "
        "(0,1,2,5), sweep them in one run: the JSON adds 'sweep' with each latency's pass rates, speedup "
        "and blind writes",
    )
    p.add_argument(
        "--time-scale", type=positive_float, default=1.0, help="multiplies every tool latency (default 1)"
    )
    p.add_argument(
        "--max-steps", type=positive_int, default=10, help="model steps per user turn (default 10)"
    )
    p.add_argument(
        "--max-tokens", type=positive_int, default=384, help="output tokens per model step (default 384)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed (default 0)")
    p.add_argument(
        "--out", type=Path, help="also write the full JSON here (and each run, as it ends, to OUT.runs.jsonl)"
    )
    p.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="run the embedded model without its profile (worked example, repeats answered; default: with)",
    )
    p.add_argument(
        "--no-hold",
        dest="hold",
        action="store_false",
        help="run blind writes as the model wrote them (default: the agent's, held in async mode)",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="play each task's reference solution as the model (it passes futures on and awaits only "
        "what it decides on), its prompts counted by the embedded model's template and tokenizer: "
        "what asyncfc's texts cost in tokens when the model uses futures as intended",
    )
    p.add_argument("--list", action="store_true", help="list the tasks and exit")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_bench_tasks)
    return p


def cmd_bench_tasks(args: argparse.Namespace) -> int:
    from rich.console import Console

    from asyncfc_bench.tasks.catalog import TASKS, select

    err = Console(stderr=True)
    if args.list:
        return _list(TASKS)
    try:
        tasks = select(args.tasks)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        return 2
    if not tasks:
        err.print("--tasks must select a task")
        return 2
    server_note = ""
    started_here = False
    remote = bool(args.model or args.base_url)
    if remote:
        base_url, model_name = args.base_url, args.model or "default"
    else:
        from asyncfc import local

        try:
            was_running = local.running(args.size)
            server = local.ensure_server(args.size)
        except local.LocalModelError as exc:
            err.print(f"[red]local model unavailable:[/red] {exc}")
            return 3
        started_here = was_running is None
        base_url, model_name = server.base_url, server.model
    try:
        data = asyncio.run(_run(args, tasks, base_url, model_name, err))
    except _Unreachable as exc:
        err.print(f"[red]model endpoint unreachable[/red]: {exc}")
        return 3
    finally:
        if not remote:
            from asyncfc import local

            server_note = local.release(args.size, started_here=started_here)
    data["server"] = server_note or None
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    if args.json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    else:
        _print(data)
    if server_note:
        err.print(server_note)
    if not data["consistent"]:
        err.print(f"[red]consistency check failed[/red]: {data['problems'][:5]}")
        return 1
    return 0


class _Unreachable(Exception):
    pass


async def _run(
    args: argparse.Namespace, tasks: list[Any], base_url: str | None, model_name: str, err: Any
) -> dict[str, Any]:
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from asyncfc.models.base import Message, Model, ModelRequest
    from asyncfc.models.openai_chat import OpenAIChatModel
    from asyncfc_bench.tasks.report import summarize, sweep
    from asyncfc_bench.tasks.runner import (
        Config,
        EndpointUnreachable,
        ModelFor,
        Run,
        default_delivery,
        run_sweep,
    )

    modes: list[ModeName] = args.modes
    swept: list[float | None] = list(args.lookup_latency) if args.lookup_latency else [None]
    single = swept[0] if len(swept) == 1 else None
    config = Config(
        modes=tuple(modes),
        runs=args.runs,
        lookup_latency_s=single,
        time_scale=args.time_scale,
        delivery=args.delivery,
        max_steps=args.max_steps,
        agent_options={} if args.hold else {"hold_blind_writes": False},
    )
    # the embedded model comes with its profile (worked example, repeats answered) unless --no-profile
    with_profile = not (args.model or args.base_url) and args.profile and not args.reference
    new: Callable[..., OpenAIChatModel] = OpenAIChatModel
    if with_profile:
        from asyncfc.local import LocalModel

        new = functools.partial(LocalModel, size=args.size)  # with its size's cost priors
    model = new(
        model_name,
        base_url=base_url,
        api_key=args.api_key,
        temperature=0.0,
        seed=args.seed,
        max_tokens=args.max_tokens,
    )
    warm: Model | None = new(
        model_name, base_url=base_url, api_key=args.api_key, temperature=0.0, seed=args.seed, max_tokens=1
    )
    model_for: ModelFor = lambda t, m, r: model  # noqa: E731
    if args.reference:
        from asyncfc_bench.tasks.reference import PrefixCache, ReferenceModel
        from asyncfc_bench.tokens import prompt_token_ids

        tokenize = functools.partial(prompt_token_ids, base_url or "")
        try:  # before any run: every one of them would fail the same way
            tokenize(ModelRequest(messages=[Message("user", "hello")], tools=[]))
        except httpx.HTTPError as exc:
            raise _Unreachable(
                f"--reference counts prompts with llama-server's /apply-template and /tokenize at {base_url}: {exc}"
            ) from exc
        caches = {m: PrefixCache() for m in modes}
        model_for, warm = (lambda t, m, r: ReferenceModel(t, tokenize, caches[m])), None
    started = time.perf_counter()
    total = len(tasks) * len(modes) * args.runs * len(swept)
    with Progress(
        TextColumn("[bold]tasks[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        auto_refresh=False,  # no refresh thread competing with the timed runs
    ) as progress:
        bar = progress.add_task("", total=total)
        progress.refresh()

        partial = args.out.with_suffix(".runs.jsonl") if args.out else None
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text("")

        def advance(run: Run) -> None:
            if partial is not None:  # each run as it finishes: a killed suite keeps what it did
                with partial.open("a") as f:
                    f.write(json.dumps(run.row(), default=str) + "\n")
            mark = "ok" if run.passed else "FAIL"
            progress.update(bar, advance=1, description=f"{run.mode} {run.task} {mark} {run.wall_s:.1f}s")
            progress.refresh()

        try:
            runs = await run_sweep(tasks, config, swept, model_for, warm_model=warm, on_run=advance)
        except EndpointUnreachable as exc:
            raise _Unreachable(str(exc)) from exc
        finally:
            await model.aclose()
    data = summarize(runs, modes, seed=args.seed)
    if len(swept) > 1:
        data["sweep"] = sweep(runs, modes, [s for s in swept if s is not None], seed=args.seed)
    problems = [f"{r.task}:{r.mode}:{p}" for r in runs for p in r.problems]
    data.update(
        consistent=not problems,
        problems=problems,
        config={
            "model": "reference" if args.reference else model_name,
            "base_url": base_url,
            "size": None if args.model or args.base_url else args.size,
            "modes": modes,
            "delivery": args.delivery or default_delivery(),
            "lookup_latency_s": single if len(swept) == 1 else swept,
            "time_scale": args.time_scale,
            "max_steps": args.max_steps,
            "max_tokens": args.max_tokens,
            "runs": args.runs,
            "temperature": 0.0,
            "seed": args.seed,
            "profile": with_profile,
            "hold_blind_writes": args.hold,
            "reference": args.reference,
        },
        elapsed_s=round(time.perf_counter() - started, 1),
        async_prompt_overhead=None  # the embedded model's prompt: not what a reference run reads
        if args.model or args.base_url or args.reference
        else _async_overhead(base_url, model, config),
    )
    return data


def _async_overhead(base_url: str | None, model: Any, config: Any) -> dict[str, Any] | None:
    """Prompt tokens async mode adds, counted by llama-server's own template and tokenizer."""
    from asyncfc.agent import Agent
    from asyncfc_bench.tasks.world import World
    from asyncfc_bench.tokens import async_overhead

    if base_url is None or "sync" not in config.modes or "async" not in config.modes:
        return None
    tools = World().tools()
    sync, asyn = (Agent(model, tools, **config.options(m)) for m in ("sync", "async"))
    try:
        return async_overhead(base_url, sync, asyn)
    except Exception:  # noqa: BLE001 - a server without /apply-template: report nothing
        return None


def _list(tasks: Any) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(tasks)} tasks")
    for col in ("#", "name", "shape", "user turns"):
        table.add_column(col)
    for i, t in enumerate(tasks):
        table.add_row(str(i), t.name, t.shape, " / ".join(t.turns))
    Console().print(table)
    return 0


def _print(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    table = Table(title=f"task suite: {data.get('tasks')} tasks x {data.get('runs_per_task')} run(s)")
    for col in (
        "mode",
        "passed",
        "pass rate",
        "mean wall s",
        "mean model s",
        "mean tool s",
        "uncached prompt/task",
        "speedup",
        "95% CI",
        "McNemar p",
        "blind-write runs",
        "held calls",
    ):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode, m in data["modes"].items():
        sp = data.get("speedup", {}).get(mode)
        ci = sp["ci95"] if sp else None
        table.add_row(
            mode,
            str(m["passed"]),
            f"{m['pass_rate']:.2f}",
            f"{m['mean_wall_s']:.2f}",
            f"{m['mean_model_s']:.2f}",
            f"{m['mean_tool_s']:.2f}",
            f"{m['uncached_prompt_tokens_per_task']:.0f}",
            f"{sp['mean']:.2f}x" if sp else "-",
            f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-",
            f"{data.get('mcnemar_p', {}).get(mode, 1.0):.3g}" if mode != "sync" else "-",
            str(m.get("blind_write_runs", "-")),
            str(m.get("held_calls", "-")),
        )
    out.print(table)
    if data.get("sweep"):
        swept = Table(title="lookup latency sweep")
        for col in ("latency s", "mode", "pass rate", "speedup", "95% CI", "blind-write runs", "held calls"):
            swept.add_column(col)
        for latency, row in data["sweep"].items():
            for mode, m in row["modes"].items():
                sp = row.get("speedup", {}).get(mode)
                swept.add_row(
                    latency,
                    mode,
                    f"{m['pass_rate']:.2f}",
                    f"{sp['mean']:.2f}x" if sp else "-",
                    f"[{sp['ci95'][0]:.2f}, {sp['ci95'][1]:.2f}]" if sp and None not in sp["ci95"] else "-",
                    str(m["blind_write_runs"]),
                    str(m["held_calls"]),
                )
        out.print(swept)
    out.print(f"ideal speedup {data.get('ideal_speedup')}, efficiency {data.get('efficiency')}")
    rows = Table(title="per task")
    for col in ("task", "shape", "mode", "ok", "wall s", "ideal s", "steps", "calls", "reason"):
        rows.add_column(col)
    for r in data.get("per_task", []):
        rows.add_row(
            r["task"],
            r["shape"],
            r["mode"],
            "ok" if r["passed"] else "FAIL",
            f"{r['wall_s']:.2f}",
            f"{r['ideal_s']:.2f}",
            str(r["steps"]),
            str(r["calls"]),
            r["reason"][:80],
        )
    out.print(rows)
