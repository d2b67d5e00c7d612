"""``asyncfc bench bfcl``: BFCL multi-turn entries in sync, parallel and async mode.

Register it with :func:`add_parser` on the ``bench`` sub-parsers; :func:`main` runs it
stand-alone (``main(["--category", "base", "--time-scale", "0.01", "--json"])``).

Exit codes: 0 success; 1 the replay model failed an entry in some mode (the replay plays
the ground truth, so every entry must pass in every mode); 2 bad usage; 3 a real model's
endpoint cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncfc.cli.options import grace_option, non_negative_float, parse_modes, positive_float, positive_int
from asyncfc.mode import ModeName
from asyncfc.revise import POLICIES
from asyncfc_bench.bfcl.data import Entry, load_category

__all__ = [
    "CATEGORY_NAMES",
    "add_parser",
    "cmd_bench_bfcl",
    "main",
    "select_entries",
]

CATEGORY_NAMES = {
    "base": "multi_turn_base",
    "miss_func": "multi_turn_miss_func",
    "miss_param": "multi_turn_miss_param",
    "long_context": "multi_turn_long_context",
}
BLOCK = 50
"""Each category holds four blocks of 50 entries, one per primary class (file system,
vehicle, trading, travel); ``--sample`` spreads over them."""


def _floats(text: str) -> list[float]:
    values = [non_negative_float(x) for x in text.split(",") if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative numbers, got {text!r}")
    return values


def _range(text: str) -> slice:
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            return slice(int(a) if a.strip() else None, int(b) if b.strip() else None)
        i = int(text)
        return slice(i, i + 1)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"entries must look like 0:50, 10: or 7 (got {text!r})") from exc


def add_parser(bench_subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bfcl`` on the ``bench`` sub-parsers (its handler is ``args.func``)."""
    p: argparse.ArgumentParser = bench_subparsers.add_parser(
        "bfcl",
        help="BFCL multi-turn tasks in every mode, judged by the official checker",
        description="BFCL multi-turn entries in sync, parallel and async mode with injected tool latency. "
        "The default model replays the ground truth with simulated decode time; --model local runs the "
        "embedded model, --model NAME with --base-url a real OpenAI-compatible model (a real model gets "
        "a worked example from another entry and a warm prompt cache in every mode).",
    )
    p.add_argument("--category", choices=[*CATEGORY_NAMES, "all"], default="base", help="default base")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--entries", type=_range, help="index range per category, e.g. 0:50 (default all)")
    pick.add_argument(
        "--sample", type=positive_int, help="N entries per category, seeded, spread over the class blocks"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for --sample and bootstrap (default 0)")
    p.add_argument(
        "--delay",
        type=non_negative_float,
        default=5.0,
        help="seconds each call sleeps before it runs (default 5)",
    )
    p.add_argument("--delay-profile", type=Path, help='JSON {"function": seconds}; others take --delay')
    p.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        help="multiplies delays and decode times (0.01 = 100x faster)",
    )
    p.add_argument("--modes", type=parse_modes, default=["sync", "parallel", "async"], help="comma-separated")
    p.add_argument(
        "--model",
        default="replay",
        help="replay (default), local (the embedded model, started if needed) or a model name at --base-url",
    )
    p.add_argument("--base-url", help="OpenAI-compatible endpoint for a real model")
    p.add_argument("--api-key", help="API key for --base-url (default: $OPENAI_API_KEY or none)")
    p.add_argument(
        "--fc",
        choices=["sequential", "parallel"],
        default="parallel",
        help="replay: calls per response (default parallel)",
    )
    p.add_argument(
        "--ttft", type=non_negative_float, default=0.5, help="replay: seconds to first token (default 0.5)"
    )
    p.add_argument(
        "--tps", type=positive_float, default=60.0, help="replay: output tokens per second (default 60)"
    )
    p.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="run everything K times, averaging per entry (default 1)",
    )
    p.add_argument(
        "--sweep", type=_floats, help="run at each delay, e.g. 1,5,10, and plot latency against it"
    )
    p.add_argument(
        "--coarse", action="store_true", help="one conflict label per class instead of the state tree"
    )
    p.add_argument(
        "--grace",
        type=grace_option,
        default="auto",
        help="async: auto (cost-aware grace, the default) or a fixed window in seconds, scaled by "
        "--time-scale (e.g. 0.5)",
    )
    p.add_argument(
        "--revise",
        choices=POLICIES,
        help="async: when a final answer gets another model step (default when_needed)",
    )
    p.add_argument(
        "--max-steps", type=positive_int, default=20, help="model steps per user turn (default 20, as BFCL)"
    )
    p.add_argument(
        "--no-example",
        dest="example",
        action="store_false",
        help="real model: no worked example from another entry (default: one, in each mode's form)",
    )
    p.add_argument("--out", type=Path, help="output folder (default results/bfcl/<timestamp>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_bench_bfcl)
    return p


def select_entries(
    categories: Sequence[str], entries: slice | None, sample: int | None, seed: int = 0
) -> list[Entry]:
    """The entries to run: a range per category, or a seeded sample spread over the class blocks."""
    out: list[Entry] = []
    for category in categories:
        pool = load_category(category)
        if sample is not None:
            rng = random.Random(f"{seed}:{category}")
            blocks = [list(range(s, min(s + BLOCK, len(pool)))) for s in range(0, len(pool), BLOCK)]
            for block in blocks:
                rng.shuffle(block)
            picked: list[int] = []
            while len(picked) < min(sample, len(pool)):
                for block in blocks:
                    if block and len(picked) < sample:
                        picked.append(block.pop())
            out.extend(pool[i] for i in sorted(picked))
        else:
            out.extend(pool[entries] if entries is not None else pool)
    return out


def _profile(path: Path | None) -> dict[str, float]:
    if path is None:
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of non-negative seconds per function name")
    return {str(k): float(v) for k, v in data.items()}


def cmd_bench_bfcl(args: argparse.Namespace) -> int:
    """Run the experiment (or the sweep), write the outputs, print a summary; return the exit code."""
    from rich.console import Console

    from asyncfc_bench.bfcl import report
    from asyncfc_bench.bfcl.runner import Config, EndpointUnreachable, Experiment, rows

    err = Console(stderr=True)
    if args.repeat < 1 or args.max_steps < 1 or (args.sample is not None and args.sample < 1):
        err.print("--repeat, --max-steps and --sample must be at least 1")
        return 2
    try:
        profile = _profile(args.delay_profile)
    except (OSError, ValueError) as exc:
        err.print(f"bad --delay-profile: {exc}")
        return 2
    categories = list(CATEGORY_NAMES.values()) if args.category == "all" else [CATEGORY_NAMES[args.category]]
    entries = select_entries(categories, args.entries, args.sample, args.seed)
    if not entries:
        err.print("no entries selected")
        return 2
    modes: list[ModeName] = args.modes
    agent_options: dict[str, Any] = {"revise": args.revise} if args.revise else {}
    base = Config(
        delay_s=args.delay,
        delay_profile=profile,
        time_scale=args.time_scale,
        modes=tuple(modes),
        fc=args.fc,
        ttft_s=args.ttft,
        tokens_per_s=args.tps,
        coarse=args.coarse,
        max_steps=args.max_steps,
        repeat=args.repeat,
        model=args.model,
        base_url=args.base_url,
        api_key=args.api_key,
        agent_options=agent_options,
        example=args.example,
        grace=args.grace,
    )
    delays = list(args.sweep) if args.sweep else [args.delay]
    main_delay = args.delay if args.delay in delays else delays[-1]
    out_dir: Path = args.out or Path("results") / "bfcl" / time.strftime("%Y%m%d-%H%M%S")
    experiments: dict[float, Experiment] = {}
    started = time.perf_counter()
    started_server = False
    if args.model == "local":  # started here (pulled and built on first use), stopped at the end
        from asyncfc import local

        try:
            started_server = local.running() is None
            local.ensure_server()
        except local.LocalModelError as exc:
            err.print(f"[red]local model unavailable:[/red] {exc}")
            return 3
    try:
        experiments = asyncio.run(_run_all(base, delays, entries, err))
    except EndpointUnreachable as exc:
        err.print(f"[red]endpoint unreachable[/red]: {exc}")
        return 3
    finally:
        if args.model == "local":
            err.print(local.release(started_here=started_server))
    points: list[dict[str, Any]] = []
    all_rows: list[dict[str, Any]] = []
    summaries: dict[float, dict[str, Any]] = {}
    for delay, exp in experiments.items():
        rs = rows(exp)
        for r in rs:
            r["delay_s"] = delay
        all_rows.extend(rs)
        summaries[delay] = report.summarize(rs, modes, seed=args.seed)
        points.append({"delay_s": delay, "summary": summaries[delay]})
    summary = summaries[main_delay]
    main_exp = experiments[main_delay]
    traces: dict[str, dict[str, Any]] = {}
    for run in main_exp.runs:
        if run.trace is not None:
            traces.setdefault(run.entry, {})[run.mode] = run.trace
    config = {
        **dataclasses.asdict(dataclasses.replace(base, delay_s=main_delay)),
        "modes": list(modes),
        "categories": categories,
        "entries_selected": [e.id for e in entries],
        "sweep": delays if args.sweep else None,
        "elapsed_s": round(time.perf_counter() - started, 2),
    }
    config.pop("api_key", None)
    main_rows = [r for r in all_rows if r["delay_s"] == main_delay]
    written = report.write_outputs(
        out_dir,
        summary=summary,
        config=config,
        rows=all_rows if args.sweep else main_rows,
        modes=modes,
        traces=traces,
        sweep=points if args.sweep else (),
        plots=not args.no_plots,
    )
    failed = (
        [r for r in main_rows if not r["valid"]]
        if not args.sweep
        else [r for r in all_rows if not r["valid"]]
    )
    code = 1 if base.replay and failed else 0
    if args.json:
        payload = {
            **summary,
            "time_scale": base.time_scale,
            "delay_s": main_delay,
            "config": {
                k: config[k]
                for k in ("model", "fc", "coarse", "ttft_s", "tokens_per_s", "repeat", "categories")
            },
            "elapsed_s": config["elapsed_s"],
            "out": str(out_dir),
            "failed": [f"{r['entry']}:{r['mode']}:{r.get('error_type')}" for r in failed],
        }
        if args.sweep:
            payload["sweep"] = [
                {k: p["summary"].get(k) for k in ("speedup", "ideal_speedup", "efficiency", "savings_ratio")}
                | {
                    "delay_s": p["delay_s"],
                    "mean_wall_s": {m: p["summary"]["modes"][m]["mean_wall_s"] for m in modes},
                }
                | {"mean_ideal_s": p["summary"]["mean_bounds_s"]["ideal_s"]}
                for p in points
            ]
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        _print_summary(summary, modes, written)
    if code:
        err.print(f"[red]{len(failed)} replay run(s) failed the official checker[/red]")
    return code


async def _run_all(base: Any, delays: list[float], entries: list[Entry], err: Any) -> dict[float, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from asyncfc_bench.bfcl.runner import Run, run_experiment

    total = len(delays) * base.repeat * len(entries) * len(base.modes)
    out: dict[float, Any] = {}
    with Progress(
        TextColumn("[bold]bfcl[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        auto_refresh=False,  # no refresh thread taking the GIL while entries are being timed
    ) as progress:
        task = progress.add_task("", total=total)
        for delay in delays:
            config = dataclasses.replace(base, delay_s=delay)

            def advance(run: Run, delay: float = delay) -> None:
                mark = "ok" if run.valid else "FAIL"
                progress.update(
                    task, advance=1, description=f"delay {delay:g}s {run.entry} {run.mode} {mark}"
                )
                progress.refresh()  # between runs, outside the timed region

            out[delay] = await run_experiment(entries, config, advance)
    return out


def _print_summary(summary: dict[str, Any], modes: Sequence[str], written: Sequence[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"BFCL multi-turn, {summary.get('entries')} entries")
    for col in ("mode", "accuracy", "mean wall s", "speedup vs sync", "95% CI", "McNemar p"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode in modes:
        m = summary["modes"][mode]
        sp = summary.get("speedup", {}).get(mode, {})
        ci = sp.get("ci95") or [None, None]
        table.add_row(
            mode,
            f"{m['accuracy']:.3f}",
            f"{m['mean_wall_s']:.4f}",
            f"{sp.get('mean', 0):.3f}x" if sp else "-",
            f"[{ci[0]:.3f}, {ci[1]:.3f}]" if sp else "-",
            f"{summary.get('mcnemar_p', {}).get(mode, 1.0):.3g}",
        )
    out = Console()
    out.print(table)
    out.print(
        f"ideal speedup {summary.get('ideal_speedup')}, efficiency {summary.get('efficiency')}, "
        f"savings ratio {summary.get('savings_ratio')}"
    )
    for path in written:
        out.print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry: ``main(["--category", "base", "--time-scale", "0.01", "--json"])``."""
    parser = argparse.ArgumentParser(prog="asyncfc bench")
    sub = parser.add_subparsers(dest="bench", required=True)
    add_parser(sub)
    args = parser.parse_args(["bfcl", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
