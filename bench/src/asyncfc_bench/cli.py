"""``asyncfc bench ...`` and ``asyncfc demo``: the subcommands this distribution adds to the
``asyncfc`` command (registered under the ``asyncfc.commands`` entry point group).

Exit codes: 0 success, 1 the run finished but failed a check (e.g. modes disagree),
2 bad usage, 3 a needed component (model server, package) is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from asyncfc.cli.options import (
    grace_option,
    non_negative_float,
    non_negative_int,
    parse_modes,
    positive_int,
    print_json,
)

__all__ = ["add_bench", "add_demo"]

console = Console(stderr=True)
out = Console()


def _mode_table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title)
    for col in ("mode", "wall s", "model s", "steps", "calls", "speedup vs sync"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode, row in data["modes"].items():
        speed = data.get("speedup", {}).get(mode)
        table.add_row(
            mode,
            f"{row['wall_s']:.3f}",
            f"{row['model_s']:.3f}",
            str(row["steps"]),
            str(row["calls"]),
            "1.00x" if mode == "sync" else (f"{speed:.2f}x" if speed else "-"),
        )
    return table


def cmd_bench_synthetic(args: argparse.Namespace) -> int:
    from .synthetic import WIRES, Workload, run_synthetic, run_synthetic_server

    workload = Workload(chains=args.chains, length=args.length, delay_s=args.delay, decode_s=args.decode)
    if args.server:
        wires = [w.strip() for w in args.wire.split(",") if w.strip()] or ["chat"]
        unknown = [w for w in wires if w not in WIRES]
        if unknown:
            out.print(f"unknown --wire {', '.join(unknown)}: choose from {', '.join(WIRES)}")
            return 2
        data = asyncio.run(run_synthetic_server(workload, args.modes, wires[0], args.grace))
        if len(wires) > 1:  # the first wire's figures stay where they were; the others beside them
            data["wires"] = {wires[0]: _wire_summary(data)}
            for wire in wires[1:]:
                other = asyncio.run(run_synthetic_server(workload, args.modes, wire, args.grace))
                data["wires"][wire] = _wire_summary(other)
                data["consistent"] = data["consistent"] and other["consistent"]
    else:
        data = asyncio.run(run_synthetic(workload, args.modes, executor=args.executor, grace=args.grace))
    if args.trace_dir:
        folder = Path(args.trace_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for mode, result in data["_results"].items():
            result.trace.save(folder / f"synthetic-{mode}.trace.json")
    if args.plot:
        from asyncfc.trace import plot_timeline

        plot_timeline({m: r.trace for m, r in data["_results"].items()}, args.plot, "synthetic workload")
    if args.json:
        print_json(data)
    else:
        w = data["workload"]
        out.print(
            _mode_table(
                f"synthetic: {w['chains']} chains x {w['length']} calls, tool {w['delay_s']} s, decode {w['decode_s']} s/call",
                data,
            )
        )
        out.print(
            f"ideal (zero-overhead async): {data['ideal_s']:.3f} s  ->  ideal speedup {data.get('ideal_speedup', 0):.2f}x, "
            f"async achieved {data.get('async_vs_ideal', 0):.3f}x of ideal time, efficiency {data.get('efficiency', 0):.2f}"
        )
        if "adapter_overhead_ms" in data:
            out.print(f"adapter overhead per request: {data['adapter_overhead_ms']:.2f} ms")
        for wire, summary in data.get("wires", {}).items():
            speedups = ", ".join(f"{m} {v:.2f}x" for m, v in summary["speedup"].items())
            out.print(
                f"wire {wire}: speedup vs sync {speedups}; adapter overhead {summary['adapter_overhead_ms']:.2f} ms"
            )
        out.print(
            "all modes agree on results and state" if data["consistent"] else "[red]modes DISAGREE[/red]"
        )
    return 0 if data["consistent"] else 1


def _wire_summary(data: dict[str, Any]) -> dict[str, Any]:
    """One wire's figures of a ``synthetic --server`` run, to set beside another wire's."""
    keys = (
        "transport",
        "modes",
        "speedup",
        "async_vs_ideal",
        "efficiency",
        "adapter_overhead_ms",
        "consistent",
    )
    return {k: data[k] for k in keys if k in data}


def _ints(text: str) -> list[int]:
    values = [positive_int(x) for x in text.split(",") if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def cmd_bench_overhead(args: argparse.Namespace) -> int:
    from .overhead import measure

    if args.server:
        return _bench_overhead_server(args)
    with console.status("measuring runtime overhead per call ..."):
        data = asyncio.run(measure(args.modes, args.in_flight, args.labels))
    if args.json:
        print_json(data)
        return 0
    table = Table(title="asyncfc overhead per call (instant tools, instant model), microseconds")
    for col in ("mode", "in flight", "median", "p99", "emit path median", "emit path p99"):
        table.add_column(col, justify="right")
    for mode, row in data["modes"].items():
        for n, v in row["in_flight"].items():
            table.add_row(
                mode,
                n,
                f"{v['median_us']:.1f}",
                f"{v['p99_us']:.1f}",
                f"{v['submit_median_us']:.1f}",
                f"{v['submit_p99_us']:.1f}",
            )
    out.print(table)
    for mode, row in data["modes"].items():
        labels = ", ".join(f"{k} labels: {v['median_us']:.0f}" for k, v in row["labels_at_1000"].items())
        out.print(
            f"{mode}: growth {row['growth']}x from fewest to most in flight; at 1000 calls, {labels} us/call"
        )
    return 0


def _bench_overhead_server(args: argparse.Namespace) -> int:
    from .overhead import measure_server

    with console.status("measuring client CPU per call against an instant server ..."):
        data = asyncio.run(measure_server(repeats=args.repeats))
    if args.json:
        print_json(data)
        return 0
    table = Table(
        title="client CPU per call (instant tools, instant server in another process), microseconds"
    )
    for col in ("workload", "system", "CPU per call", "vs bare"):
        table.add_column(col, justify="right")
    for name, w in data["workloads"].items():
        for system, row in {**w["baseline"], **w["modes"]}.items():
            extra = row.get("extra_us_vs_bare")
            table.add_row(
                name, system, f"{row['cpu_us_per_call']:.0f}", "" if extra is None else f"{extra:+.0f}"
            )
    out.print(table)
    return 0


EXECUTOR_CHOICES = ("threads", "processes", "ray")


def cmd_bench_load(args: argparse.Namespace) -> int:
    if args.workers and args.executor != "ray":
        out.print("--workers needs --executor ray")
        return 2
    from .load import compare

    with console.status(f"running {args.sessions} concurrent sessions per mode ..."):
        data = compare(
            args.sessions,
            args.modes,
            faults=args.faults,
            seed=args.seed,
            executor=args.executor,
            workers=args.workers,
        )
    ok = all(
        m["lost"] == 0 and m["duplicated"] == 0 and m["leaked_tasks"] == 0 and not m.get("leaked_processes")
        for m in data["modes"].values()
    )
    if args.json:
        print_json(data)
        return 0 if ok else 1
    table = Table(
        title=f"{args.sessions} concurrent sessions{' with injected faults' if args.faults else ''}"
    )
    cols = (
        "emitted",
        "run",
        "rejected",
        "resolved",
        "delivered",
        "lost",
        "duplicated",
        "calls_per_s",
        "p50_session_s",
        "p99_session_s",
        "peak_rss_mb",
    )
    table.add_column("mode")
    for col in cols:
        table.add_column(col.replace("_", " "), justify="right")
    for mode, row in data["modes"].items():
        table.add_row(mode, *(str(row[c]) for c in cols))
    out.print(table)
    for mode, row in data["modes"].items():
        if row["errors_by_type"]:
            out.print(f"{mode} errors the model saw: {row['errors_by_type']}")
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from asyncfc.trace import plot_timeline

    from .stats import efficiency
    from .synthetic import Workload, run_synthetic

    report: dict[str, Any] = {}
    show = console
    show.rule("1. synthetic workload (scripted model, simulated decode)")
    data = asyncio.run(run_synthetic(Workload()))
    if not args.json:
        out.print(_mode_table("4 chains x 3 dependent calls, 0.2 s per call, 0.05 s decode per call", data))
        out.print(
            f"ideal {data['ideal_s']:.3f} s; async reaches {data.get('efficiency', 0):.0%} of the ideal saving"
        )
    report["synthetic"] = {m: data["modes"][m]["wall_s"] for m in data["modes"]}
    if args.no_llm:
        if args.json:
            print(json.dumps(report))
        return 0 if data["consistent"] else 1
    from asyncfc import local

    from . import demo

    show.rule(f"2. a real model: Qwen2.5-Coder {args.size} through llama-server")
    try:
        was_running = local.running(args.size)
        model = local.model(args.size, name=f"qwen2.5-coder-{args.size}")
        warm = local.model(args.size, max_tokens=1)  # its own client: each asyncio.run is a new loop
    except local.LocalModelError as exc:
        show.print(f"[red]local model unavailable:[/red] {exc}")
        return 3
    show.print(f"task: {demo.TASK}", markup=False)
    show.print(
        f"get_weather sleeps {args.lookup_latency:g} s (a slow web API), send_email 0.3 s; temperature 0; "
        "no example written for this task (the embedded model's profile only); a warm prompt cache per mode",
        style="dim",
    )
    runs: dict[str, Any] = {}
    try:
        for mode in ("sync", "async"):
            with show.status(f"running the task in {mode} mode ..."):
                runs[mode] = asyncio.run(demo.run_mode(model, warm, mode, args.lookup_latency))
            if not args.json:
                _print_demo_run(runs[mode])
    finally:
        note = local.release(args.size, started_here=was_running is None and not args.keep_server)
    sync_s, async_s = runs["sync"].result.wall_s, runs["async"].result.wall_s
    speedup = sync_s / async_s if async_s > 0 else None
    ideal_s = runs["sync"].ideal_s
    ideal = sync_s / ideal_s if ideal_s > 0 else None
    share = efficiency(sync_s, async_s, ideal_s)
    report.update(
        {
            "task": demo.TASK,
            "lookup_latency_s": args.lookup_latency,
            "email_latency_s": 0.3,
            "modes": {m: r.to_json() for m, r in runs.items()},
            "speedup": round(speedup, 3) if speedup else None,
            "ideal_speedup": round(ideal, 3) if ideal else None,
            "efficiency": round(share, 3) if share is not None else None,
            "server": note,
        }
    )
    png = Path(args.plot)
    plot_timeline(
        {f"{m} ({r.result.wall_s:.1f} s)": r.result.trace for m, r in runs.items()},
        png,
        f"Qwen2.5-Coder {args.size}: {demo.TASK}",
    )
    if args.json:
        print(json.dumps(report, default=str))
    else:
        out.print(f"[bold]speedup async vs sync: {speedup:.2f}x[/bold] ({sync_s:.1f} s -> {async_s:.1f} s)")
        if ideal:
            out.print(
                f"ideal {ideal:.2f}x ({ideal_s:.1f} s: the sync run's model steps and tool times with zero "
                f"overhead, no step waiting for a value it only passes on); efficiency {share or 0:.0%}"
            )
        out.print(f"timeline: {png}")
    show.print(note, style="dim")
    return 0 if all(r.done for r in runs.values()) else 1


def _print_demo_run(run: Any) -> None:
    from .demo import summary

    t = run.breakdown()
    out.print(
        f"[bold]{run.mode}[/bold]: {t['wall_s']:.1f} s wall = model {t['model_s']:.1f} s "
        f"(prefill {t['prefill_s']:.1f} s, decode {t['decode_s']:.1f} s) + tools {t['tools_s']:.1f} s "
        f"- overlap {t['overlap_s']:.1f} s; {run.result.steps} model steps"
    )
    for line in summary(run.result.calls):
        out.print(f"   {line}", markup=False, highlight=False)
    out.print(f"   answer: {run.result.text.strip()!r}", markup=False)
    verdict = (
        "[green]task done[/green]" if run.done else f"[red]task not done:[/red] {'; '.join(run.problems)}"
    )
    out.print(f"   {verdict}")


def cmd_bench_proxy(args: argparse.Namespace) -> int:
    from .proxy import run

    with console.status("timing MCP calls, direct and through the proxy ..."):
        data = run(args.calls, args.warmup)
    if args.json:
        print_json(data)
    else:
        table = Table(title=f"MCP call over stdio, {data['calls']} calls each, microseconds")
        for col in ("system", "median", "p90", "mean"):
            table.add_column(col, justify="right")
        for system in ("direct", "proxied", "difference"):
            row = data[system]
            table.add_row(system, f"{row['median_us']:.0f}", f"{row['p90_us']:.0f}", f"{row['mean_us']:.0f}")
        out.print(table)
        verdict = "within" if data["within_budget"] else "[red]over[/red]"
        out.print(
            f"proxy cost {data['difference']['median_us']:+.0f} us per call: {verdict} the {data['budget_us']:.0f} us budget"
        )
    return 0 if data["within_budget"] else 1


def add_bench(sub: Any) -> None:
    """``asyncfc bench``: every benchmark."""
    bench = sub.add_parser("bench", help="run a benchmark").add_subparsers(dest="bench", required=True)
    syn = bench.add_parser("synthetic", help="independent chains of dependent calls in every mode")
    syn.add_argument("--chains", type=positive_int, default=4, help="independent chains (default 4)")
    syn.add_argument("--length", type=positive_int, default=3, help="calls per chain (default 3)")
    syn.add_argument(
        "--delay", type=non_negative_float, default=0.2, help="seconds per tool call (default 0.2)"
    )
    syn.add_argument(
        "--decode", type=non_negative_float, default=0.05, help="model decode seconds per call (default 0.05)"
    )
    syn.add_argument(
        "--modes", type=parse_modes, default=["sync", "parallel", "async"], help="comma-separated modes"
    )
    syn.add_argument(
        "--server",
        action="store_true",
        help="go through the simulated-decode HTTP server and the OpenAI adapter",
    )
    syn.add_argument(
        "--wire",
        default="chat",
        help="with --server: chat, responses or responses-native (native async tools), or several "
        "comma-separated (the first one's figures on top, each one's under 'wires'); default chat",
    )
    syn.add_argument("--trace-dir", help="write one Chrome trace JSON per mode here")
    syn.add_argument("--plot", help="write a timeline PNG of all modes here")
    syn.add_argument("--json", action="store_true", help="print one JSON object")
    syn.add_argument("--executor", choices=EXECUTOR_CHOICES, default="threads", help="where tools run")
    syn.add_argument(
        "--grace",
        type=grace_option,
        default="auto",
        help="async: auto (cost-aware, the default) or a fixed window in seconds, e.g. 0.5",
    )
    syn.set_defaults(func=cmd_bench_synthetic)

    ovh = bench.add_parser("overhead", help="runtime cost per call with instant tools and model")
    ovh.add_argument(
        "--modes", type=parse_modes, default=["sync", "parallel", "async"], help="comma-separated modes"
    )
    ovh.add_argument("--in-flight", type=_ints, default=[10, 100, 1000, 10000], help="calls per burst")
    ovh.add_argument(
        "--labels", type=_ints, default=[1, 10, 100, 1000], help="distinct labels (at 1000 calls)"
    )
    ovh.add_argument("--json", action="store_true", help="print one JSON object")
    ovh.add_argument(
        "--server",
        action="store_true",
        help="client CPU per call of every mode and a bare SDK loop against an instant server in another process",
    )
    ovh.add_argument(
        "--repeats", type=positive_int, default=3, help="with --server: measured rounds (median, default 3)"
    )
    ovh.set_defaults(func=cmd_bench_overhead)

    load = bench.add_parser("load", help="many concurrent multi-turn sessions, optionally with faults")
    load.add_argument(
        "--sessions", type=positive_int, default=1000, help="concurrent sessions (default 1000)"
    )
    load.add_argument("--faults", action="store_true", help="inject tool, model and cancellation faults")
    load.add_argument("--seed", type=int, default=0, help="fault-injection seed")
    load.add_argument(
        "--modes", type=parse_modes, default=["sync", "parallel", "async"], help="comma-separated modes"
    )
    load.add_argument("--json", action="store_true", help="print one JSON object")
    load.add_argument("--executor", choices=EXECUTOR_CHOICES, default="threads", help="where tools run")
    load.add_argument(
        "--workers",
        type=non_negative_int,
        default=0,
        help="with --executor ray: spread sessions over N Ray actors (default 0: none)",
    )
    load.set_defaults(func=cmd_bench_load)

    from .bfcl.cli import add_parser as add_bfcl

    add_bfcl(bench)

    from .tasks.cli import add_parser as add_tasks

    add_tasks(bench)

    from .peers import add_parser as add_peers

    add_peers(bench)

    from .subagents import add_parser as add_subagents

    add_subagents(bench)

    prx = bench.add_parser(
        "proxy", help="per-call cost of asyncfc mcp serve over calling the same MCP upstream directly"
    )
    prx.add_argument(
        "--calls", type=positive_int, default=2000, help="measured calls per side (default 2000)"
    )
    prx.add_argument(
        "--warmup", type=non_negative_int, default=200, help="unmeasured calls first (default 200)"
    )
    prx.add_argument("--json", action="store_true", help="print one JSON object")
    prx.set_defaults(func=cmd_bench_proxy)


def add_demo(sub: Any) -> None:
    """``asyncfc demo``: the synthetic workload, then a real task on the local model."""
    demo = sub.add_parser(
        "demo", help="synthetic benchmark, then a real task on the local model, sync vs async"
    )
    demo.add_argument(
        "--size", choices=["0.5b", "1.5b"], default="1.5b", help="local model size (default 1.5b)"
    )
    demo.add_argument("--no-llm", action="store_true", help="skip the real-model part")
    demo.add_argument(
        "--lookup-latency",
        type=non_negative_float,
        default=5.0,
        metavar="SECONDS",
        help="seconds each weather lookup takes (default 5, the latency the paper injected)",
    )
    demo.add_argument(
        "--keep-server", action="store_true", help="leave a llama-server this command started running"
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    demo.add_argument("--plot", default="demo-timeline.png", help="where to write the timeline PNG")
    demo.set_defaults(func=cmd_demo)
