"""Spans for model requests and calls on one monotonic clock, with Chrome-trace export.

Open an exported file in Perfetto (ui.perfetto.dev) or chrome://tracing to see which
calls overlapped with decoding and with each other.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Span:
    """One interval (``end`` set) or instant (``end`` None) on a named lane."""

    name: str
    cat: str
    lane: str
    start: float
    end: float | None = None
    args: dict[str, Any] = field(default_factory=dict)


class Trace:
    """Collects spans; times are seconds since the trace was created."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.spans: list[Span] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def span(self, name: str, cat: str, lane: str, start: float, end: float | None, **args: Any) -> Span:
        s = Span(name, cat, lane, start, end, dict(args))
        self.spans.append(s)
        return s

    def to_chrome(self) -> dict[str, Any]:
        """Chrome trace event JSON (complete events ``X`` and instants ``i``, microseconds)."""
        lanes: dict[str, int] = {}
        events: list[dict[str, Any]] = []
        for s in sorted(self.spans, key=lambda s: s.start):
            tid = lanes.setdefault(s.lane, len(lanes) + 1)
            ev: dict[str, Any] = {
                "name": s.name,
                "cat": s.cat,
                "pid": 1,
                "tid": tid,
                "ts": s.start * 1e6,
                "args": s.args,
            }
            if s.end is None:
                ev.update(ph="i", s="t")
            else:
                ev.update(ph="X", dur=max(0.0, s.end - s.start) * 1e6)
            events.append(ev)
        meta = [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": lane}}
            for lane, tid in lanes.items()
        ]
        return {"traceEvents": meta + events, "displayTimeUnit": "ms"}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_chrome()))
        return p


def plot_timeline(traces: dict[str, Trace], path: str | Path, title: str = "") -> Path:
    """Draw one timeline per trace (model steps and calls as bars), stacked, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"model": "#4C72B0", "call": "#DD8452", "wait": "#DDDDDD", "await": "#55A868"}
    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 1.2 + 0.9 * len(traces) * 3), squeeze=False)
    horizon = max((s.end or s.start) for t in traces.values() for s in t.spans) if traces else 1.0
    for ax, (label, trace) in zip(axes[:, 0], traces.items(), strict=True):
        lanes: list[str] = []
        for s in trace.spans:
            if s.end is not None and s.lane not in lanes:
                lanes.append(s.lane)
        for s in trace.spans:
            if s.end is None:
                continue
            y = lanes.index(s.lane)
            ax.barh(
                y,
                s.end - s.start,
                left=s.start,
                color=colors.get(s.cat, "#999999"),
                edgecolor="black",
                lw=0.3,
            )
        ax.set_yticks(range(len(lanes)), lanes, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, horizon * 1.02)
        ax.set_title(f"{label}", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
