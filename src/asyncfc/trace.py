"""Spans for model requests and calls on one monotonic clock, with Chrome-trace export.

Open an exported file in Perfetto (ui.perfetto.dev) or chrome://tracing to see which
calls overlapped with decoding and with each other. Each model step recorded with
:meth:`Trace.model_step` is split into prefill (prompt processing) and decode, and its
prompt and cached tokens are kept, so a run shows what it cost the model
(:meth:`Trace.model_cost`), not only how long it took.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import UsageError
from .models.base import ModelResponse, Usage

__all__ = [
    "CallTimes",
    "Span",
    "Trace",
    "plot_timeline",
]


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
        self._usage: list[tuple[float, Usage]] = []
        self._usage_in_order = True
        """Steps recorded in start order (the agent's always are): ``usages`` can bisect."""
        self._nested: dict[str, list[Trace]] = {}
        """Traces of runs started inside a call (a sub-agent's), by that call's lane."""

    def nest(self, child: Trace, lane: str) -> None:
        """Show ``child`` (a sub-agent's run) inside the call on ``lane`` (``"fut_3 research"``):
        its spans, on lanes named ``"<lane> › <its lane>"`` and shifted to this trace's clock,
        follow that call's spans, and its model steps count in :meth:`model_cost`."""
        self._nested.setdefault(lane, []).append(child)

    def _nested_spans(self, lane: str) -> list[Span]:
        out: list[Span] = []
        for child in self._nested.get(lane, ()):
            shift = child.t0 - self.t0
            for s in child.spans:
                end = None if s.end is None else s.end + shift
                args = {**s.args, "parent": s.args.get("parent", lane)}
                out.append(Span(s.name, s.cat, f"{lane} › {s.lane}", s.start + shift, end, args))
        return out

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def span(self, name: str, cat: str, lane: str, start: float, end: float | None, **args: Any) -> Span:
        s = Span(name, cat, lane, start, end, dict(args))
        self._spans.append(s)
        return s

    def model_step(
        self, step: int | str, start: float, end: float, response: ModelResponse, **args: Any
    ) -> Span:
        """Record one model request on the ``model`` lane, with what it cost.

        The step span (category ``model``) carries the token counts; when the usage says
        how long prefill and decode took (server timings, or estimated from the time to
        first token), a ``prefill`` and a ``decode`` span are nested inside it: prefill
        ends at the first token, decode follows it (with server timings, decode ends with the
        step). Returns the step span.
        """
        u = response.usage
        name = f"step {step}" if isinstance(step, int) else step
        span = self.span(
            name,
            "model",
            "model",
            start,
            end,
            calls=len(response.tool_calls),
            ttft_s=response.ttft_s,
            output_tokens=u.output_tokens,
            prompt_tokens=u.input_tokens,
            cached_prompt_tokens=u.cached_input_tokens,
            prefill_s=u.prefill_s,
            decode_s=u.decode_s,
            timing=u.timing,
            **args,
        )
        if self._usage and start < self._usage[-1][0]:
            self._usage_in_order = False
        self._usage.append((start, u))
        if u.timing:
            if u.timing == "server":  # decode ran until the response ended; a streamed tool call's
                first = end - u.decode_s  # first chunk comes tokens after the first token
            else:
                first = start + (response.ttft_s if response.ttft_s is not None else u.prefill_s)
            first = min(max(first, start), end)
            self.span(
                "prefill",
                "prefill",
                "model",
                max(start, first - u.prefill_s),
                first,
                prompt_tokens=u.input_tokens,
                cached_tokens=u.cached_input_tokens,
                processed_tokens=u.uncached_input_tokens,
                seconds=u.prefill_s,
                timing=u.timing,
            )
            self.span(
                "decode",
                "decode",
                "model",
                first,
                min(end, first + u.decode_s),
                output_tokens=u.output_tokens,
                seconds=u.decode_s,
                timing=u.timing,
            )
        return span

    def usages(self, since: float = 0.0) -> list[Usage]:
        """The usage of each model step recorded with :meth:`model_step` that started at ``since`` or later."""
        if self._usage_in_order:  # the last turn's steps, without a scan of the whole session
            first = bisect.bisect_left(self._usage, since, key=lambda e: e[0])
            own = [u for _, u in self._usage[first:]]
        else:
            own = [u for t, u in self._usage if t >= since]
        for children in self._nested.values():  # sub-agents' steps roll up into their parent's
            for child in children:
                own.extend(child.usages(since - (child.t0 - self.t0)))
        return own

    def recent_usages(self, n: int) -> list[Usage]:
        """The usage of the last ``n`` model steps recorded, oldest first (without a scan of the session)."""
        return [u for _, u in self._usage[-n:]] if n > 0 else []

    def model_cost(self, since: float = 0.0) -> Usage:
        """What the model steps since ``since`` cost together: tokens, cached tokens, prefill and decode."""
        return Usage.total(self.usages(since))

    def follow(self, calls: Sequence[CallTimes]) -> None:
        """Derive call spans from these (growing) call records."""
        self._calls.append(calls)

    @property
    def spans(self) -> list[Span]:
        """Recorded spans, then per call: waiting, running, emitted and delivered."""
        out = list(self._spans)
        placed: set[str] = set()
        for calls in self._calls:
            for c in calls:
                lane = f"{c.id} {c.name}"
                if lane in self._nested and lane not in placed:
                    placed.add(lane)
                    nested = self._nested_spans(lane)
                else:
                    nested = []
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
                out.extend(nested)
        for lane in self._nested:
            if lane not in placed:  # nested under a call this trace does not follow
                out.extend(self._nested_spans(lane))
        return out

    def to_chrome(self) -> dict[str, Any]:
        """Chrome trace event JSON (complete events ``X`` and instants ``i``, microseconds)."""
        lanes: dict[str, int] = {}
        events: list[dict[str, Any]] = []
        # at equal starts the longer span first, so a step's prefill nests inside it
        for s in sorted(
            self.spans, key=lambda s: (s.start, -(s.end - s.start if s.end is not None else 0.0))
        ):
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
            if s.cat == "model" and "prompt_tokens" in s.args:
                # a counter track: how much of each prompt the cache held and how much was processed
                cached = int(s.args.get("cached_prompt_tokens") or 0)
                counts = {"cached": cached, "processed": max(0, int(s.args["prompt_tokens"]) - cached)}
                counter = {"name": "prompt tokens", "cat": "model", "ph": "C", "pid": 1, "tid": tid}
                events.append({**counter, "ts": s.start * 1e6, "args": counts})
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
    """Draw one timeline per trace (model steps and calls as bars), stacked, to a PNG.

    Needs the ``plot`` extra (``pip install 'asyncfc[plot]'``): a :class:`UsageError`
    says so when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("plot_timeline needs matplotlib: pip install 'asyncfc[plot]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "model": "#4C72B0",
        "prefill": "#A6BDDB",
        "decode": "#4C72B0",
        "overhead": "#F2F2F2",
        "call": "#DD8452",
        "wait": "#DDDDDD",
        "await": "#55A868",
    }
    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 1.2 + 0.9 * len(traces) * 3), squeeze=False)
    horizon = max((s.end or s.start) for t in traces.values() for s in t.spans) if traces else 1.0
    for ax, (label, trace) in zip(axes[:, 0], traces.items(), strict=True):
        lanes: list[str] = []
        for s in trace.spans:
            if s.end is not None and s.lane not in lanes:
                lanes.append(s.lane)
        spans = trace.spans
        split_at = {s.start for s in spans if s.cat in ("prefill", "decode")}
        for s in spans:
            if s.end is None:
                continue
            y = lanes.index(s.lane)
            # a split step shows through its prefill and decode only where neither ran:
            # request overhead (HTTP, queueing) the server did not count as prefill
            split = s.cat == "model" and any(s.start <= t <= s.end for t in split_at)
            ax.barh(
                y,
                s.end - s.start,
                left=s.start,
                color=colors["overhead"] if split else colors.get(s.cat, "#999999"),
                edgecolor="black",
                lw=0.3,
            )
        ax.set_yticks(range(len(lanes)), lanes, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, horizon * 1.02)
        ax.set_title(f"{label}", fontsize=9, loc="left")
    from matplotlib.patches import Patch

    split = any(s.cat == "prefill" for t in traces.values() for s in t.spans)
    legend = {"model": "model decode" if split else "model step", "call": "call running"}
    legend |= {"prefill": "model prefill", "overhead": "request overhead"} if split else {}
    legend |= {"wait": "call waiting", "await": "await"}
    axes[0, 0].legend(
        handles=[Patch(facecolor=colors[k], edgecolor="black", label=v) for k, v in legend.items()],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize=7,
        ncol=len(legend),
    )
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
