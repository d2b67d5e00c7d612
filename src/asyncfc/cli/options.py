"""Value parsers shared by every ``asyncfc`` subcommand: a bad value is exit code 2 with the
reason, never a traceback or a silently empty run."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from ..mode import MODES, ModeName

__all__ = [
    "grace_option",
    "non_negative_float",
    "non_negative_int",
    "parse_modes",
    "positive_float",
    "positive_int",
    "print_json",
]

_Number = TypeVar("_Number", int, float)


def _bounded(text: str, convert: Callable[[str], _Number], *, positive: bool) -> _Number:
    """An option's number, refused unless finite and positive (or, with ``positive=False``,
    non-negative)."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(
            f"must be a {'positive' if positive else 'non-negative'} number, got {text}"
        )
    return value


def positive_int(text: str) -> int:
    return _bounded(text, int, positive=True)


def non_negative_int(text: str) -> int:
    return _bounded(text, int, positive=False)


def positive_float(text: str) -> float:
    return _bounded(text, float, positive=True)


def non_negative_float(text: str) -> float:
    return _bounded(text, float, positive=False)


def grace_option(text: str) -> float | str:
    """``--grace`` values: ``auto`` (the cost-aware policy) or seconds (a fixed window)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return non_negative_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected auto or a non-negative number of seconds, got {text!r}"
        ) from None


def parse_modes(text: str) -> list[ModeName]:
    """``--modes`` values: a comma-separated subset of sync, parallel, async."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in MODES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown mode(s): {', '.join(bad) or '(none)'} ({', '.join(MODES)})"
        )
    return names  # type: ignore[return-value]  # each checked against MODES above


def print_json(data: dict[str, Any]) -> None:
    """One JSON object on stdout (keys starting with ``_`` are in-process extras, left out)."""
    sys.stdout.write(json.dumps({k: v for k, v in data.items() if not k.startswith("_")}, indent=2) + "\n")
