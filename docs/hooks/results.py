"""MkDocs hook: benchmark results in the docs come from the benchmarks' own JSON output.

A page that holds ``<!-- results: NAME -->`` on a line of its own gets, in its place, tables rendered from
``docs/results/NAME.json`` (written by ``docs/results/record.py``: the command, the time it
was recorded, its exit code and the JSON object it printed), followed by that command and
time. A missing or unreadable file, or a name without a renderer, stops the build with a
message naming the file and the command that makes it: the docs never show a figure that
no command printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
PLACEHOLDER = re.compile(r"^<!--\s*results:\s*([\w.-]+)\s*-->[ \t]*$", re.M)
"""On a line of its own (written inline, in backticks, it is only mentioned)."""
LAYERS = re.compile(r"^<!--\s*import-layers\s*-->[ \t]*$", re.M)

Row = list[str]


def _table(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _speed(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _modes(out: dict[str, Any]) -> str:
    speedup = out.get("speedup", {})
    rows = [
        [
            f"`{mode}`",
            _num(row["wall_s"], 3),
            _num(row["model_s"], 3),
            _num(row["steps"]),
            _num(row["calls"]),
            _num(row["errors"]),
            "1.00x" if mode == "sync" else _speed(speedup.get(mode)),
        ]
        for mode, row in out["modes"].items()
    ]
    table = _table(["mode", "wall s", "model s", "steps", "calls", "errors", "speedup vs sync"], rows)
    summary = (
        f"Ideal (zero-overhead asynchronous) time {_num(out['ideal_s'], 3)} s, ideal speedup "
        f"{_speed(out.get('ideal_speedup'))}, efficiency {_num(out.get('efficiency'))}, "
        f"all modes consistent: {_num(out.get('consistent'))}."
    )
    return f"{table}\n\n{summary}"


def render_synthetic(out: dict[str, Any]) -> str:
    w = out["workload"]
    head = (
        f"Workload: {w['chains']} chains x {w['length']} calls, {w['delay_s']} s per call, "
        f"{w['decode_s']} s decode per call; executor `{out.get('executor', 'threads')}`"
        + (f"; grace `{out['grace']}`." if "grace" in out else ".")
    )
    text = f"{head}\n\n{_modes(out)}"
    if "adapter_overhead_ms" in out:
        text += (
            f" Transport `{out['transport']}` at {_num(out['tokens_per_s'], 0)} tokens/s; "
            f"adapter overhead {_num(out['adapter_overhead_ms'], 1)} ms against the same run in process."
        )
    return text


def render_synthetic_wires(out: dict[str, Any]) -> str:
    """``synthetic --server --wire A,B,...``: the first wire in full, then every wire side by side."""
    rows = [
        [
            f"`{wire}`",
            f"`{s.get('transport', '')}`",
            _num(s["modes"].get("sync", {}).get("wall_s"), 3),
            _num(s["modes"].get("async", {}).get("wall_s"), 3),
            _speed(s["speedup"].get("parallel")),
            _speed(s["speedup"].get("async")),
            _num(s.get("adapter_overhead_ms"), 1),
            _num(s.get("consistent")),
        ]
        for wire, s in out.get("wires", {}).items()
    ]
    header = ["wire", "transport", "sync wall s", "async wall s", "parallel speedup", "async speedup"]
    table = _table([*header, "adapter overhead ms", "consistent"], rows)
    return f"{render_synthetic(out)}\n\nEvery wire of the run:\n\n{table}"


def render_overhead(out: dict[str, Any]) -> str:
    modes = out["modes"]
    sizes = list(next(iter(modes.values()))["in_flight"])
    rows = [
        [f"`{m}`", *[_num(d["in_flight"][n]["median_us"], 1) for n in sizes], _num(d.get("growth"))]
        for m, d in modes.items()
    ]
    first = _table(["mode", *[f"{n} in flight" for n in sizes], "growth"], rows)
    submit = [
        [f"`{m}`", *[_num(d["in_flight"][n]["submit_median_us"], 1) for n in sizes]] for m, d in modes.items()
    ]
    second = _table(["mode", *[f"{n} in flight" for n in sizes]], submit)
    labels = list(next(iter(modes.values())).get("labels_at_1000", {}))
    parts = [
        "Median wall time per call, µs (growth: the largest burst's figure over the smallest's):",
        first,
        "Median time of the emission path alone (`submit_median_us`), µs:",
        second,
    ]
    if labels:
        lrows = [
            [f"`{m}`", *[_num(d["labels_at_1000"][n]["median_us"], 1) for n in labels]]
            for m, d in modes.items()
        ]
        parts += [
            "Median µs per call at 1,000 in flight, by number of distinct labels:",
            _table(["mode", *[f"{n} labels" for n in labels]], lrows),
        ]
    return "\n\n".join(parts)


def render_load(out: dict[str, Any]) -> str:
    keys = [
        ("calls/s", "calls_per_s", 0),
        ("p50 session s", "p50_session_s", 3),
        ("p99 session s", "p99_session_s", 3),
        ("peak RSS MB", "peak_rss_mb", 1),
        ("emitted", "emitted", 0),
        ("run", "run", 0),
        ("delivered", "delivered", 0),
        ("lost", "lost", 0),
        ("duplicated", "duplicated", 0),
        ("leaked tasks", "leaked_tasks", 0),
        ("leaked threads", "leaked_threads", 0),
    ]
    rows = [[f"`{m}`", *[_num(d.get(k), digits) for _, k, digits in keys]] for m, d in out["modes"].items()]
    head = (
        f"{_num(out['sessions'])} sessions, faults {'on' if out.get('faults') else 'off'}, "
        f"executor `{out.get('executor', 'threads')}`."
    )
    return f"{head}\n\n" + _table(["mode", *[h for h, _, _ in keys]], rows)


def render_peers(out: dict[str, Any]) -> str:
    workloads = out["workloads"]
    names = list(workloads)
    systems: list[str] = []
    for w in names:
        for s in workloads[w]["systems"]:
            if s not in systems:
                systems.append(s)

    def cell(w: str, s: str) -> str:
        row = workloads[w]["systems"].get(s)
        if row is None:
            return "–"
        if row.get("available") is False:
            return "unavailable"
        return f"{_num(row['wall_s'], 2)} ({_speed(row.get('speedup_vs_sync'))})"

    rows = [[f"`{s}`", *[cell(w, s) for w in names]] for s in systems]
    parts = [
        "Wall seconds per user turn, median over the repeats (speedup against `asyncfc-sync`):",
        _table(["system", *[f"`{w}`" for w in names]], rows),
    ]
    gains = [
        [f"`{w}`", f"`{fw}`", _speed(g.get("asyncfc")), _speed(g.get("asyncfc-mcp"))]
        for w in names
        for fw, g in workloads[w].get("gain_over_framework", {}).items()
    ]
    if gains:
        parts += [
            "Gain of each framework with asyncfc underneath over the framework alone:",
            _table(["workload", "framework", "+asyncfc", "+asyncfc-mcp"], gains),
        ]
    unavailable = sorted(
        {
            f"`{s}`: {row.get('reason', 'no reason given')}"
            for w in names
            for s, row in workloads[w]["systems"].items()
            if row.get("available") is False
        }
    )
    parts.append(
        f"Identical calls, results and state in every system: {_num(out.get('identical'))}; "
        f"repeats {_num(out.get('repeats'))}, grace window {_num(out.get('grace_s'))} s."
        + (" Unavailable: " + "; ".join(unavailable) + "." if unavailable else "")
    )
    return "\n\n".join(parts)


def _ci(pair: Any) -> str:
    return f"[{pair[0]:.2f}, {pair[1]:.2f}]" if isinstance(pair, list) and len(pair) == 2 else "–"


def render_bfcl(out: dict[str, Any]) -> str:
    speedup = out.get("speedup", {})
    rows = []
    for mode, d in out["modes"].items():
        s = speedup.get(mode, {})
        rows.append(
            [
                f"`{mode}`",
                f"{d['passed']} / {out['entries']}",
                _num(d["mean_wall_s"], 3),
                _num(d.get("mean_model_s"), 3),
                _num(d.get("mean_tool_s"), 3),
                _num(d.get("mean_steps"), 2),
                _num(d.get("mean_await_steps"), 2),
                f"{_speed(s.get('mean'))} {_ci(s.get('ci95'))}",
                _num(out.get("mcnemar_p", {}).get(mode), 2),
            ]
        )
    config = out.get("config", {})
    head = (
        f"{out['entries']} entries, model `{config.get('model', '?')}`, `--fc {config.get('fc', '?')}`, "
        f"{'coarse labels' if config.get('coarse') else 'the state tree'}, delay {out.get('delay_s')} s, "
        f"time scale {out.get('time_scale')} (times below are scaled by it; ratios are not)."
    )
    table = _table(
        [
            "mode",
            "passed",
            "mean wall s",
            "mean model s",
            "mean tool s",
            "steps",
            "await steps",
            "speedup vs sync [95% CI]",
            "McNemar p",
        ],
        rows,
    )
    savings = out.get("savings", {})
    tail = (
        f"Ideal speedup {_speed(out.get('ideal_speedup'))} {_ci(out.get('ideal_speedup_ci95'))}, "
        f"efficiency {_num(out.get('efficiency'))}."
    )
    if savings:
        a, i = savings["achieved"], savings["ideal"]
        tail += (
            f" Saving per entry, achieved against ideal: decode/execution overlap "
            f"{_num(a['overlap_s'], 4)} s against {_num(i['overlap_s'], 4)} s, parallelism between calls "
            f"{_num(a['parallelism_s'], 4)} s against {_num(i['parallelism_s'], 4)} s."
        )
    return f"{head}\n\n{table}\n\n{tail}"


def render_subagents(out: dict[str, Any]) -> str:
    config = out.get("config", {})
    speedup = out.get("speedup", {})
    rows = []
    for mode, d in out["modes"].items():
        s = speedup.get(mode, {})
        rows.append(
            [
                f"`{mode}`",
                f"{d['passed']} / {out['tasks']}",
                _num(d["mean_wall_s"], 2),
                _num(d.get("mean_steps"), 1),
                _num(d.get("mean_calls"), 1),
                "1.00x" if mode == "sync" else f"{_speed(s.get('mean'))} {_ci(s.get('ci95'))}",
                "–" if mode == "sync" else _num(out.get("mcnemar_p", {}).get(mode), 2),
            ]
        )
    if config.get("model") == "sim":
        where = (
            f"the simulated-decode server (first token {config.get('ttft_s')} s, "
            f"{config.get('tokens_per_s')} tokens/s, concurrent requests decoded concurrently)"
        )
    else:
        where = (
            f"the embedded {config.get('size', '?')} model (llama-server, {config.get('decode_slots')} slot)"
        )
    head = (
        f"{out['tasks']} composed requests of {', '.join(map(str, config.get('subquestions', [])))} "
        f"sub-questions each, on {where}; lookups take {config.get('lookup_latency_s')} s."
    )
    table = _table(
        ["mode", "passed", "mean wall s", "model steps", "calls", "speedup vs sync [95% CI]", "McNemar p"],
        rows,
    )
    tail = (
        f"Ideal speedup {_speed(out.get('ideal_speedup'))} (every sub-agent overlapped), efficiency "
        f"{_num(out.get('efficiency'))}; identical judgement in every mode: "
        f"{_num(out.get('identical_judgement'))}."
    )
    return f"{head}\n\n{table}\n\n{tail}"


def render_proxy(out: dict[str, Any]) -> str:
    rows = [
        [
            system,
            ("+" if system == "difference" else "") + _num(out[system]["median_us"], 0),
            ("+" if system == "difference" else "") + _num(out[system]["p90_us"], 0),
            ("+" if system == "difference" else "") + _num(out[system]["mean_us"], 0),
        ]
        for system in ("direct", "proxied", "difference")
    ]
    table = _table(["calls to the same upstream", "median µs", "p90 µs", "mean µs"], rows)
    verdict = "within" if out["within_budget"] else "over"
    head = (
        f"{_num(out['calls'])} calls each (after {_num(out['warmup'])} unmeasured), direct and through "
        f"`asyncfc mcp serve` in turn, to the instant tool `{out['tool']}` over {out['transport']}."
    )
    tail = (
        f"The proxy adds {_num(out['difference']['median_us'], 0)} µs per call at the median: "
        f"{verdict} the {_num(out['budget_us'], 0)} µs budget."
    )
    return f"{head}\n\n{table}\n\n{tail}"


_PARTS = {
    "value": "a tool value as sync mode shows it (for comparison)",
    "placeholder": "placeholder",
    "delivery": "a value delivered with a later tool message",
    "await_answer": "an `await_future` answer for one value",
    "delivered_again": "an `await_future` answer for a value given earlier",
    "repeat_note": "the note beside a repeated call",
    "answer_now": "the line after a step of repeats",
    "instructions": "async instructions",
    "await_tool": "`await_future` tool spec",
    "example_sync": "worked example, sync form",
    "example_async": "worked example, async form",
}


def render_tasks_tokens(out: dict[str, Any]) -> str:
    """The task suite's pass rates and uncached prompt tokens per mode, and the tokens of each
    text async mode adds (``async_prompt_overhead.parts``), for a before/after pair of runs."""
    rows = [
        [
            f"`{mode}`",
            f"{d['passed']} / {out['tasks'] * out.get('runs_per_task', 1)}",
            _num(d.get("mean_steps"), 2),
            _num(d["uncached_prompt_tokens_per_task"], 1),
            _num(d.get("prompt_tokens")),
        ]
        for mode, d in out["modes"].items()
    ]
    header = ["mode", "passed", "model steps", "uncached prompt tokens / task", "prompt tokens, all tasks"]
    table = _table(header, rows)
    overhead = out.get("async_prompt_overhead") or {}
    leaks = sum("worked example" in r.get("reason", "") for r in out.get("per_task", []))
    tail = (
        f"Uncached prompt tokens, async / sync: {_num(out.get('uncached_prompt_ratio'))}; answers or "
        f"written values that repeat the worked example: {leaks}; first prompt "
        f"{_num(overhead.get('sync_prompt'))} tokens in sync mode, {_num(overhead.get('async_prompt'))} in async."
    )
    parts = overhead.get("parts") or {}
    if parts:
        part_rows = [[_PARTS.get(k, k), _num(v)] for k, v in parts.items()]
        tail += "\n\n" + _table(["text (Qwen2.5 tokenizer)", "tokens"], part_rows)
    return f"{table}\n\n{tail}"


def render_snippets(out: dict[str, Any]) -> str:
    """docs/results/snippets.py: each framework snippet's passes out of tries per mode on the
    embedded model, and what the failed tries did."""
    modes = out["modes"]
    rows = []
    for page, runs in out["pages"].items():
        row = [f"[{page}]({page}.md)"]
        for mode in modes:
            tries = runs.get(mode, [])
            row.append(f"{sum(bool(r['passed']) for r in tries)}/{len(tries)}")
            row.append(_num(sum(r["seconds"] for r in tries) / len(tries), 1) if tries else "–")
        failed = [r for m in modes for r in runs.get(m, []) if not r["passed"]]
        what = sorted({r["error"] or f"orders {r['orders']}" for r in failed})
        row.append("; ".join(what) or "–")
        rows.append(row)
    header = ["snippet"] + [h for m in modes for h in (f"`{m}` passed", f"`{m}` mean s")] + ["failed tries"]
    return _table(header, rows)


def _token_ratio(sync: dict[str, Any], asy: dict[str, Any]) -> str:
    key = "uncached_prompt_tokens_per_task"
    if not sync.get(key) or key not in asy:
        return "–"
    return f"{_num(asy[key] / sync[key])}x"


def render_tasks_sweep(out: dict[str, Any]) -> str:
    """``asyncfc bench tasks --lookup-latency A,B,...``: per lookup latency, each mode's pass
    rate, async's mean speedup over sync with its 95% CI, and the runs that wrote blind."""
    rows = []
    for latency, row in out["sweep"].items():
        runs = row["tasks"] * row.get("runs_per_task", 1)
        sync, asy = row["modes"].get("sync", {}), row["modes"].get("async", {})
        sp = row.get("speedup", {}).get("async") or {}
        ci = sp.get("ci95") or [None, None]
        rows.append(
            [
                f"{latency} s",
                f"{sync.get('passed', '–')} / {runs}",
                f"{asy.get('passed', '–')} / {runs}",
                f"{_num(sp.get('mean'))}x" if sp else "–",
                f"[{_num(ci[0])}, {_num(ci[1])}]" if None not in ci else "–",
                str(asy.get("blind_write_runs", "–")),
                str(asy.get("held_calls", "–")),
                f"{asy['futures_shown_runs']} / {runs}" if "futures_shown_runs" in asy else "–",
                _token_ratio(sync, asy),
            ]
        )
    header = [
        "lookup latency",
        "`sync` passed",
        "`async` passed",
        "async speedup",
        "95% CI",
        "async blind-write runs",
        "async held calls",
        "async runs shown futures",
        "uncached prompt tokens, async / sync",
    ]
    return _table(header, rows)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "tasks-sweep-local": render_tasks_sweep,
    "tasks-sweep-local-0.5b": render_tasks_sweep,
    "tasks-sweep-reference": render_tasks_sweep,
    "snippets-local": render_snippets,
    "tasks-tokens-before": render_tasks_tokens,
    "tasks-tokens-after": render_tasks_tokens,
    "proxy": render_proxy,
    "subagents-sim": render_subagents,
    "subagents-local": render_subagents,
    "bfcl-replay": render_bfcl,
    "synthetic": render_synthetic,
    "synthetic-server": render_synthetic,
    "synthetic-slow": render_synthetic,
    "synthetic-fixed-grace": render_synthetic,
    "synthetic-wires": render_synthetic_wires,
    "overhead": render_overhead,
    "load": render_load,
    "peers": render_peers,
}


def render(name: str, page: str) -> str:
    """The markdown that replaces ``<!-- results: NAME -->`` on ``page``."""
    path = RESULTS / f"{name}.json"
    make = f"python docs/results/record.py {name} -- asyncfc bench ... --json"
    if name not in RENDERERS:
        raise PluginError(f"{page}: no renderer for results {name!r} (known: {', '.join(RENDERERS)})")
    if not path.is_file():
        raise PluginError(f"{page}: results file {path} is missing; produce it with `{make}`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        body = RENDERERS[name](record["output"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PluginError(f"{page}: cannot render {path}: {type(exc).__name__}: {exc}") from exc
    status = "" if record.get("exit_code", 0) == 0 else f", exit code {record['exit_code']}"
    if "load_average" in record:
        status += f", load average {record['load_average']} on {record.get('cpus', '?')} CPUs"
    return f"{body}\n\n*Produced by `{record['command']}` on {record['recorded']}{status}.*"


def render_layers(page: str) -> str:
    """The import-linter contracts of pyproject.toml: the layers as a table, the others listed."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config.get("tool", {}).get("importlinter", {}).get("contracts", [])
    layered = [c for c in contracts if c.get("type") == "layers"]
    if not layered:
        raise PluginError(f"{page}: pyproject.toml has no import-linter layers contract")
    parts: list[str] = []
    for contract in layered:
        layers = contract["layers"]
        rows = [
            [str(len(layers) - i), ", ".join(f"`{m.strip()}`" for m in layer.split("|"))]
            for i, layer in enumerate(layers)
        ]
        parts += [
            f"**{contract['name']}** (top imports bottom, never the reverse):",
            _table(["layer", "modules"], rows),
        ]
    others = [f"- {c['name']} (`{c['type']}`)" for c in contracts if c.get("type") != "layers"]
    if others:
        parts += ["The other contracts:", "\n".join(others)]
    return "\n\n".join(parts) + "\n\n*Rendered from `[tool.importlinter]` in pyproject.toml.*"


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    where = page.file.src_uri
    markdown = LAYERS.sub(lambda _: render_layers(where), markdown)
    return PLACEHOLDER.sub(lambda m: render(m.group(1), where), markdown)
