"""The ideal bound: the completion time of a zero-overhead asynchronous runtime.

It is the critical path through the model's decode steps and the calls: the model never
waits, a call starts no earlier than its emission and the completion of the calls it
depends on (data or read/write hazards), and the final answer comes no earlier than the
end of its own decoding and of every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "IdealCall",
    "IdealStep",
    "ideal_time",
]


@dataclass(frozen=True)
class IdealCall:
    duration_s: float
    deps: Sequence[int] = ()
    """Indices (program order, 0-based) of earlier calls that must finish first."""
    emit_offset_s: float | None = None
    """When, from the start of its step, the call is complete in the stream (None: at the step's end)."""


@dataclass(frozen=True)
class IdealStep:
    decode_s: float
    calls: Sequence[IdealCall] = field(default_factory=tuple)


def ideal_time(steps: Sequence[IdealStep], final_decode_s: float = 0.0) -> float:
    """Completion time of ``steps`` followed by a final answer decoded in ``final_decode_s``."""
    t = 0.0
    ends: list[float] = []
    for step in steps:
        for call in step.calls:
            emitted = t + (step.decode_s if call.emit_offset_s is None else call.emit_offset_s)
            start = max([emitted, *(ends[d] for d in call.deps)])
            ends.append(start + call.duration_s)
        t += step.decode_s
    return max([t + final_decode_s, *ends])
