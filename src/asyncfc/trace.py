"""Spans for model requests and calls on one monotonic clock, with Chrome-trace export.

Open an exported file in Perfetto (ui.perfetto.dev) or chrome://tracing to see which
calls overlapped with decoding and with each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Span:
    """One interval (``end`` set) or instant (``end`` None) on a named lane."""

    name: str
    cat: str
    lane: str
    start: float
    end: float | None = None
    args: dict[str, Any] = field(default_factory=dict)


class CallTimes(Protocol):
    """What a trace reads from a call record (see :class:`asyncfc.scheduler.Call`)."""

    @property
    def id(self) -> str: ...
    @property
    def error(self) -> Any: ...

    seq: int
    name: str
    emitted_at: float
    started_at: float | None
    finished_at: float | None
    delivered_at: float | None


class Trace:
    """Collects spans; times are seconds since the trace was created.

    Model steps are recorded as they happen; call spans are derived on demand from the
    call records the trace follows, so the hot path allocates nothing for tracing.
    """

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self._spans: list[Span] = []
        self._calls: list[Sequence[CallTimes]] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def span(self, name: str, cat: str, lane: str, start: float, end: float | None, **args: Any) -> Span:
        s = Span(name, cat, lane, start, end, dict(args))
        self._spans.append(s)
        return s

    def follow(self, calls: Sequence[CallTimes]) -> None:
        """Derive call spans from these (growing) call records."""
        self._calls.append(calls)

    @property
    def spans(self) -> list[Span]:
        """Recorded spans, then per call: waiting, running, emitted and delivered."""
        out = list(self._spans)
        for calls in self._calls:
            for c in calls:
                lane = f"{c.id} {c.name}"
                if c.started_at is not None and c.finished_at is not None:
                    if c.started_at > c.emitted_at:
                        out.append(Span("waiting", "wait", lane, c.emitted_at, c.started_at))
                    out.append(
                        Span(
                            c.name,
                            "call",
                            lane,
                            c.started_at,
                            c.finished_at,
                            {"ok": c.error is None, "seq": c.seq},
                        )
                    )
                out.append(Span("emitted", "call", lane, c.emitted_at))
                if c.delivered_at is not None:
                    out.append(Span("delivered", "call", lane, c.delivered_at))
        return out

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
    from matplotlib.patches import Patch

    legend = {"model": "model step", "call": "call running", "wait": "call waiting", "await": "await"}
    axes[0, 0].legend(
        handles=[Patch(facecolor=colors[k], edgecolor="black", label=v) for k, v in legend.items()],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize=7,
        ncol=4,
    )
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
