"""Statistics, JSON, Markdown and plots for the BFCL benchmark.

Every entry runs in every mode, so the statistics are paired: speedups are ratios of mean
wall times with a bootstrap interval that resamples *entries*, accuracy differences are
tested with McNemar's exact test on the entries where two modes disagree. The ideal bound
and the savings split come from the per-entry bounds the runner computes from the workload.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from asyncfc.trace import Trace
from asyncfc_bench.stats import bootstrap_ci, efficiency, mcnemar, paired_ratio_ci, speedup

__all__ = [
    "BOUND_OF_MODE",
    "Row",
    "markdown",
    "matched",
    "plot_latency",
    "plot_sweep",
    "summarize",
    "typical_entry",
    "write_outputs",
]

Row = Mapping[str, Any]

BOUND_OF_MODE = {"sync": "sync_ideal_s", "parallel": "parallel_ideal_s", "async": "ideal_s"}
"""The zero-overhead time of each mode: what its measured time is compared with for overhead."""


def _r(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def matched(rows: Sequence[Row], modes: Sequence[str]) -> tuple[list[str], dict[str, dict[str, Row]]]:
    """Entries that have a row in every mode (in first-seen order), and the rows by mode and entry."""
    by: dict[str, dict[str, Row]] = {m: {} for m in modes}
    order: list[str] = []
    for row in rows:
        mode = str(row["mode"])
        if mode in by:
            by[mode][str(row["entry"])] = row
            if row["entry"] not in order:
                order.append(str(row["entry"]))
    entries = [e for e in order if all(e in by[m] for m in modes)]
    return entries, by


def summarize(
    rows: Sequence[Row], modes: Sequence[str], *, resamples: int = 4000, seed: int = 0
) -> dict[str, Any]:
    """Aggregate per-entry rows into the benchmark's headline numbers.

    Keys: ``entries``; ``modes`` (per mode: accuracy, passed, mean wall/model/tool seconds,
    a 95% CI of the mean wall, mean steps, calls, await steps, revisions, overhead over
    its zero-overhead bound); ``speedup`` (per mode: ``mean(T_sync) / mean(T_mode)`` and its
    paired bootstrap ``ci95``); ``ideal_speedup`` (+ ``ideal_speedup_ci95``),
    ``overlap_only_speedup`` and ``parallel_fc_ideal_speedup``, all against measured sync;
    ``efficiency`` = (ΣT_sync − ΣT_async) / (ΣT_sync − ΣT_ideal) and ``savings_ratio`` =
    (ΣT_sync − ΣT_async) / (ΣT_sync0 − ΣT_ideal) with T_sync0 the zero-overhead sync time
    (the measured saving over the workload's ideal saving: runtime overhead common to both
    modes cancels, so it isolates what async fails to overlap); ``async_over_ideal``;
    ``mcnemar_p`` (per mode, against sync); ``accuracy_equal``; ``savings`` (mean seconds
    per entry that async saves, split into decode/execution overlap and inter-function
    parallelism, ideal and achieved); ``mean_bounds_s``; ``per_category`` when rows span
    several categories.
    """
    entries, by = matched(rows, modes)
    n = len(entries)
    out: dict[str, Any] = {"entries": n, "modes": {}}
    if n == 0:
        return out
    first = by[modes[0]]
    bounds = {
        key: [float(first[e][key]) for e in entries]
        for key in ("ideal_s", "overlap_only_s", "sync_ideal_s", "parallel_ideal_s")
    }
    for mode in modes:
        rs = [by[mode][e] for e in entries]
        walls = [float(r["wall_s"]) for r in rs]
        passed = sum(bool(r["valid"]) for r in rs)
        info: dict[str, Any] = {
            "accuracy": _r(passed / n),
            "passed": passed,
            "mean_wall_s": _r(fmean(walls), 6),
            "wall_ci95": [_r(x, 6) for x in bootstrap_ci(walls, n=resamples, seed=seed)],
            "mean_model_s": _r(fmean(float(r["model_s"]) for r in rs), 6),
            "mean_tool_s": _r(fmean(float(r["tool_s"]) for r in rs), 6),
            "mean_steps": _r(fmean(float(r["steps"]) for r in rs), 3),
            "mean_calls": _r(fmean(float(r["calls"]) for r in rs), 3),
            "mean_await_steps": _r(fmean(float(r.get("await_steps", 0)) for r in rs), 3),
            "mean_references": _r(fmean(float(r.get("references", 0)) for r in rs), 3),
            "mean_revisions": _r(fmean(float(r.get("revisions", 0)) for r in rs), 3),
        }
        bound = BOUND_OF_MODE.get(mode)
        if bound:
            info["mean_overhead_s"] = _r(fmean(w - b for w, b in zip(walls, bounds[bound], strict=True)), 6)
        out["modes"][mode] = info
    cats = sorted({str(first[e].get("category", "")) for e in entries})
    out["accuracy_equal"] = len({out["modes"][m]["passed"] for m in modes}) == 1
    out["mean_bounds_s"] = {k: _r(fmean(v), 6) for k, v in bounds.items()}
    if "sync" not in modes:
        return out
    sync = [float(by["sync"][e]["wall_s"]) for e in entries]
    sync_ok = [bool(by["sync"][e]["valid"]) for e in entries]
    out["speedup"] = {}
    out["mcnemar_p"] = {}
    for mode in modes:
        other = [float(by[mode][e]["wall_s"]) for e in entries]
        lo, hi = paired_ratio_ci(sync, other, n=resamples, seed=seed)
        out["speedup"][mode] = {"mean": _r(speedup(sync, other)), "ci95": [_r(lo), _r(hi)]}
        out["mcnemar_p"][mode] = _r(mcnemar(sync_ok, [bool(by[mode][e]["valid"]) for e in entries]), 6)
    ideal = bounds["ideal_s"]
    out["ideal_speedup"] = _r(speedup(sync, ideal))
    out["ideal_speedup_ci95"] = [_r(x) for x in paired_ratio_ci(sync, ideal, n=resamples, seed=seed)]
    out["overlap_only_speedup"] = _r(speedup(sync, bounds["overlap_only_s"]))
    out["parallel_fc_ideal_speedup"] = _r(speedup(sync, bounds["parallel_ideal_s"]))
    out["zero_overhead_sync_speedup"] = _r(speedup(sync, bounds["sync_ideal_s"]))
    out["efficiency"] = None
    if "async" in modes:
        asy = [float(by["async"][e]["wall_s"]) for e in entries]
        share = efficiency(sum(sync), sum(asy), sum(ideal))
        out["efficiency"] = _r(share) if share is not None else None
        gap0 = sum(bounds["sync_ideal_s"]) - sum(ideal)
        out["savings_ratio"] = _r((sum(sync) - sum(asy)) / gap0) if gap0 > 0 else None
        out["async_over_ideal"] = _r(sum(asy) / sum(ideal))
        rs = [by["async"][e] for e in entries]
        par = fmean(float(r["tool_s"]) - float(r["call_union_s"]) for r in rs)
        total = fmean(s - a for s, a in zip(sync, asy, strict=True))
        out["savings"] = {
            "ideal": {
                "total_s": _r(fmean(s - i for s, i in zip(bounds["sync_ideal_s"], ideal, strict=True)), 6),
                "overlap_s": _r(
                    fmean(
                        s - o for s, o in zip(bounds["sync_ideal_s"], bounds["overlap_only_s"], strict=True)
                    ),
                    6,
                ),
                "parallelism_s": _r(
                    fmean(o - i for o, i in zip(bounds["overlap_only_s"], ideal, strict=True)), 6
                ),
            },
            "achieved": {
                "total_s": _r(total, 6),
                "overlap_s": _r(total - par, 6),
                "parallelism_s": _r(par, 6),
            },
        }
    if len(cats) > 1:
        out["per_category"] = {}
        for cat in cats:
            sub = [r for r in rows if str(r.get("category", "")) == cat]
            s = summarize(sub, modes, resamples=min(resamples, 1000), seed=seed)
            out["per_category"][cat] = {
                "entries": s["entries"],
                "accuracy": {m: s["modes"][m]["accuracy"] for m in modes},
                "mean_wall_s": {m: s["modes"][m]["mean_wall_s"] for m in modes},
                "speedup": {m: s["speedup"][m]["mean"] for m in modes},
                "ideal_speedup": s["ideal_speedup"],
                "efficiency": s.get("efficiency"),
            }
    return out


def typical_entry(rows: Sequence[Row], modes: Sequence[str]) -> str | None:
    """The entry whose async (else last mode) speedup is closest to the median: a fair example."""
    if "sync" not in modes or len(modes) < 2:
        return None
    entries, by = matched(rows, modes)
    mode = "async" if "async" in modes else modes[-1]
    ratios = [(float(by["sync"][e]["wall_s"]) / max(float(by[mode][e]["wall_s"]), 1e-12), e) for e in entries]
    if not ratios:
        return None
    ratios.sort()
    median = ratios[len(ratios) // 2][0]
    return min(ratios, key=lambda p: (abs(p[0] - median), p[1]))[1]


# --------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(rows: Sequence[Row], modes: Sequence[str], path: Path, *, time_scale: float = 1.0) -> Path:
    """Per-entry wall time per mode (box plot, means marked), with the ideal bound beside them."""
    plt = _pyplot()
    entries, by = matched(rows, modes)
    k = 1.0 / time_scale if time_scale > 0 else 1.0
    data = [[float(by[m][e]["wall_s"]) * k for e in entries] for m in modes]
    labels = list(modes)
    if entries:
        data.append([float(by[modes[0]][e]["ideal_s"]) * k for e in entries])
        labels.append("ideal")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    for i, values in enumerate(data, start=1):
        if values:
            ax.annotate(
                f"{fmean(values):.1f}",
                (i, fmean(values)),
                textcoords="offset points",
                xytext=(12, 0),
                fontsize=8,
            )
    unit = "s" if time_scale == 1 else f"s (nominal: measured / {time_scale:g})"
    ax.set_ylabel(f"wall time per entry, {unit}")
    ax.set_title(
        f"BFCL multi-turn: latency per mode ({len(entries)} entries; triangles = means)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sweep(
    points: Sequence[Mapping[str, Any]], modes: Sequence[str], path: Path, *, time_scale: float = 1.0
) -> Path:
    """Mean wall time per mode against the injected delay, with 95% CIs, and the ideal bound."""
    plt = _pyplot()
    k = 1.0 / time_scale if time_scale > 0 else 1.0
    delays = [float(p["delay_s"]) for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for mode in modes:
        means = [float(p["summary"]["modes"][mode]["mean_wall_s"]) * k for p in points]
        cis = [p["summary"]["modes"][mode]["wall_ci95"] for p in points]
        err = [
            [m - float(c[0]) * k for m, c in zip(means, cis, strict=True)],
            [float(c[1]) * k - m for m, c in zip(means, cis, strict=True)],
        ]
        ax.errorbar(delays, means, yerr=err, marker="o", capsize=3, label=mode)
    ideal = [float(p["summary"]["mean_bounds_s"]["ideal_s"]) * k for p in points]
    ax.plot(delays, ideal, "k--", label="ideal")
    ax.set_xlabel("injected delay per call, s")
    unit = "s" if time_scale == 1 else f"s (nominal: measured / {time_scale:g})"
    ax.set_ylabel(f"mean wall time per entry, {unit}")
    ax.set_title("BFCL multi-turn: latency vs tool delay (95% bootstrap CIs)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- text


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(
    summary: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    sweep: Sequence[Mapping[str, Any]] = (),
    failures: Sequence[Row] = (),
    images: Sequence[str] = (),
) -> str:
    """The human-readable report: configuration, per-mode table, speedups, ideal, savings."""
    scale = float(config.get("time_scale", 1.0)) or 1.0
    modes = list(summary.get("modes", {}))
    lines = [
        "# BFCL multi-turn: sync vs parallel vs async",
        "",
        f"- entries: {summary.get('entries')} ({', '.join(config.get('categories', []))})",
        f"- model: {config.get('model')}, function calling: {config.get('fc')}, "
        f"ttft {config.get('ttft_s')} s, {config.get('tokens_per_s')} tokens/s",
        f"- injected delay: {config.get('delay_s')} s per call"
        + (" (per-function profile)" if config.get("delay_profile") else "")
        + f", time scale {scale:g} (measured seconds below; nominal = measured / {scale:g})",
        f"- labels: {'coarse (one per class)' if config.get('coarse') else 'fine state tree'}, repeat {config.get('repeat')}",
        "",
        "| mode | accuracy | mean wall s | nominal s | 95% CI | model s | tool s | steps | awaits | revisions | overhead s | speedup vs sync (95% CI) | McNemar p |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in modes:
        m = summary["modes"][mode]
        sp = summary.get("speedup", {}).get(mode, {})
        ci = sp.get("ci95") or [None, None]
        wci = m.get("wall_ci95") or [None, None]
        lines.append(
            f"| {mode} | {_fmt(m['accuracy'])} | {_fmt(m['mean_wall_s'], '.4f')} | {_fmt(m['mean_wall_s'] / scale, '.2f')} | "
            f"[{_fmt(wci[0], '.4f')}, {_fmt(wci[1], '.4f')}] | {_fmt(m['mean_model_s'], '.4f')} | {_fmt(m['mean_tool_s'], '.4f')} | "
            f"{_fmt(m['mean_steps'], '.2f')} | {_fmt(m['mean_await_steps'], '.2f')} | {_fmt(m['mean_revisions'], '.2f')} | "
            f"{_fmt(m.get('mean_overhead_s'), '.4f')} | {_fmt(sp.get('mean'))} [{_fmt(ci[0])}, {_fmt(ci[1])}] | "
            f"{_fmt(summary.get('mcnemar_p', {}).get(mode), '.3g')} |"
        )
    b = summary.get("mean_bounds_s", {})
    lines += [
        "",
        "## Ideal and efficiency",
        "",
        f"- mean bounds per entry (measured seconds): ideal {_fmt(b.get('ideal_s'), '.4f')}, overlap-only "
        f"{_fmt(b.get('overlap_only_s'), '.4f')}, zero-overhead parallel FC {_fmt(b.get('parallel_ideal_s'), '.4f')}, "
        f"zero-overhead sync {_fmt(b.get('sync_ideal_s'), '.4f')}",
        f"- ideal speedup (mean T_sync / mean T_ideal): {_fmt(summary.get('ideal_speedup'))} "
        f"(95% CI {summary.get('ideal_speedup_ci95')}); overlap-only {_fmt(summary.get('overlap_only_speedup'))}; "
        f"parallel FC bound {_fmt(summary.get('parallel_fc_ideal_speedup'))}",
        f"- efficiency (ΣT_sync − ΣT_async) / (ΣT_sync − ΣT_ideal): {_fmt(summary.get('efficiency'))}; "
        f"savings ratio (ΣT_sync − ΣT_async) / (ΣT_sync0 − ΣT_ideal): {_fmt(summary.get('savings_ratio'))}; "
        f"ΣT_async / ΣT_ideal = {_fmt(summary.get('async_over_ideal'))}",
    ]
    sv = summary.get("savings")
    if sv:
        i, a = sv["ideal"], sv["achieved"]
        lines += [
            f"- savings per entry, ideal: {_fmt(i['total_s'], '.4f')} s = overlap {_fmt(i['overlap_s'], '.4f')} + "
            f"parallelism {_fmt(i['parallelism_s'], '.4f')}; achieved: {_fmt(a['total_s'], '.4f')} s = overlap "
            f"{_fmt(a['overlap_s'], '.4f')} + parallelism {_fmt(a['parallelism_s'], '.4f')}",
        ]
    pc = summary.get("per_category")
    if pc:
        lines += [
            "",
            "## Per category",
            "",
            "| category | entries | accuracy | speedup | ideal speedup | efficiency |",
            "|---|---|---|---|---|---|",
        ]
        for cat, s in pc.items():
            acc = ", ".join(f"{m} {_fmt(v)}" for m, v in s["accuracy"].items())
            spd = ", ".join(f"{m} {_fmt(v)}" for m, v in s["speedup"].items())
            lines.append(
                f"| {cat} | {s['entries']} | {acc} | {spd} | {_fmt(s['ideal_speedup'])} | {_fmt(s['efficiency'])} |"
            )
    if sweep:
        lines += [
            "",
            "## Delay sweep",
            "",
            "| delay s | "
            + " | ".join(f"{m} nominal s" for m in modes)
            + " | ideal nominal s | async speedup | ideal speedup | efficiency |",
            "|---" * (len(modes) + 5) + "|",
        ]
        for p in sweep:
            s = p["summary"]
            cells = " | ".join(_fmt(s["modes"][m]["mean_wall_s"] / scale, ".2f") for m in modes)
            lines.append(
                f"| {p['delay_s']:g} | {cells} | {_fmt(s['mean_bounds_s']['ideal_s'] / scale, '.2f')} | "
                f"{_fmt(s.get('speedup', {}).get('async', {}).get('mean'))} | {_fmt(s.get('ideal_speedup'))} | {_fmt(s.get('efficiency'))} |"
            )
    if failures:
        lines += ["", "## Failed entries", ""]
        lines += [
            f"- {r['entry']} ({r['mode']}): {r.get('error_type')} {'; '.join(r.get('notes', []))}"
            for r in failures
        ]
    if images:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def write_outputs(
    out_dir: Path,
    *,
    summary: Mapping[str, Any],
    config: Mapping[str, Any],
    rows: Sequence[Row],
    modes: Sequence[str],
    traces: Mapping[str, Mapping[str, Trace]] | None = None,
    sweep: Sequence[Mapping[str, Any]] = (),
    plots: bool = True,
) -> list[Path]:
    """``results.json``, ``report.md`` and the PNGs (latency per mode, a typical timeline, the sweep)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scale = float(config.get("time_scale", 1.0)) or 1.0
    written: list[Path] = []
    images: list[str] = []
    if plots and rows:
        written.append(plot_latency(rows, modes, out_dir / "latency.png", time_scale=scale))
        images.append("latency.png")
        entry = typical_entry(rows, modes)
        if entry and traces and entry in traces and traces[entry]:
            from asyncfc.trace import plot_timeline

            written.append(
                plot_timeline(
                    dict(traces[entry]),
                    out_dir / "timeline.png",
                    f"{entry} (typical async speedup; measured seconds, time scale {scale:g})",
                )
            )
            images.append("timeline.png")
        if len(sweep) > 1:
            written.append(plot_sweep(sweep, modes, out_dir / "sweep.png", time_scale=scale))
            images.append("sweep.png")
    failures = [r for r in rows if not r.get("valid")]
    data = {"config": dict(config), "summary": dict(summary), "sweep": list(sweep), "rows": list(rows)}
    results = out_dir / "results.json"
    results.write_text(json.dumps(data, indent=1, default=str))
    report = out_dir / "report.md"
    report.write_text(markdown(summary, config, sweep=sweep, failures=failures, images=images))
    return [results, report, *written]
