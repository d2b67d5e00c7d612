"""BFCL multi-turn entries, ground truth and function docs, read from the installed package.

The data, the backends and the checker co-evolve upstream, so everything comes from the one
pinned ``bfcl-eval`` install (``Path(bfcl_eval.__file__).parent / "data"``) instead of a
vendored copy. ``bfcl_eval`` is imported lazily: this module imports without it.

Two categories change what a model sees per turn:

* ``multi_turn_miss_func``: ``missed_function`` maps a turn to function names whose docs
  are hidden until that turn. That turn's question is ``[]``; the official harness then
  adds the docs and sends :data:`ADDITIONAL_FUNCTION_PROMPT` as the user message.
* ``multi_turn_miss_param``: one turn lacks a parameter; its ground truth is ``[]`` and the
  next turn supplies it. (Three ``multi_turn_base`` turns have ``[]`` ground truth too.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "ADDITIONAL_FUNCTION_PROMPT",
    "CATEGORIES",
    "CLASSES",
    "Entry",
    "FunctionDoc",
    "Message",
    "VERSION_PREFIX",
    "data_dir",
    "doc_param_order",
    "entry_function_docs",
    "function_docs",
    "get_entry",
    "load_all",
    "load_category",
]

CATEGORIES: tuple[str, ...] = (
    "multi_turn_base",
    "multi_turn_miss_func",
    "multi_turn_miss_param",
    "multi_turn_long_context",
)
"""The four scored multi-turn categories (200 entries each)."""

CLASSES: tuple[str, ...] = (
    "GorillaFileSystem",
    "MathAPI",
    "MessageAPI",
    "TwitterAPI",
    "TicketAPI",
    "TradingBot",
    "TravelAPI",
    "VehicleControlAPI",
)
"""The eight backend classes the multi-turn categories use."""

ADDITIONAL_FUNCTION_PROMPT = "I have updated some more functions you can choose from. What about now?"
"""The user message the official harness sends on a miss_func turn that reveals functions."""

VERSION_PREFIX = "BFCL_v4_"

Message = dict[str, str]
FunctionDoc = dict[str, Any]


def data_dir() -> Path:
    """The ``data`` folder of the installed ``bfcl-eval`` package."""
    try:
        import bfcl_eval
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "BFCL needs bfcl-eval: pip install --no-deps bfcl-eval==2026.3.23 mpmath==1.3.0"
        ) from exc
    return Path(bfcl_eval.__file__).parent / "data"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class Entry:
    """One multi-turn task: the user turns, the initial backend state and the ground truth."""

    id: str
    category: str
    questions: list[list[Message]]
    """User messages per turn, as shipped (a miss_func reveal turn is ``[]``)."""
    initial_config: dict[str, Any]
    involved_classes: tuple[str, ...]
    ground_truth: list[list[str]]
    """Call strings per turn; ``[]`` where the model should not be able to act."""
    missed_function: dict[int, tuple[str, ...]] = field(default_factory=dict)
    """miss_func only: turn index -> names whose docs are hidden before that turn."""

    @property
    def long_context(self) -> bool:
        """Backends are loaded with ``long_context=True`` (as the official executor decides)."""
        return "long_context" in self.category or "composite" in self.category

    @property
    def turns(self) -> int:
        return len(self.questions)

    def user_messages(self, turn: int) -> list[Message]:
        """What the user says in ``turn``; a reveal turn gets the official injected text."""
        if turn in self.missed_function and not self.questions[turn]:
            return [{"role": "user", "content": ADDITIONAL_FUNCTION_PROMPT}]
        return [dict(m) for m in self.questions[turn]]

    def hidden_functions(self, turn: int) -> frozenset[str]:
        """Names whose docs the model must not see yet in ``turn``."""
        return frozenset(n for t, names in self.missed_function.items() if t > turn for n in names)

    def revealed_functions(self, turn: int) -> tuple[str, ...]:
        """Names whose docs are added at the start of ``turn`` (empty for most turns)."""
        return self.missed_function.get(turn, ())

    def functions(self, turn: int = 0) -> list[FunctionDoc]:
        """The docs visible in ``turn``, in the official order (revealed docs go last)."""
        docs = entry_function_docs(self)
        missed = {n for names in self.missed_function.values() for n in names}
        visible = [d for d in docs if d["name"] not in missed]
        by_name = {d["name"]: d for d in docs}
        for t in sorted(self.missed_function):
            if t <= turn:
                visible.extend(by_name[n] for n in self.missed_function[t] if n in by_name)
        return visible


@cache
def _class_docs(class_name: str) -> tuple[FunctionDoc, ...]:
    from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING

    path = data_dir() / "multi_turn_func_doc" / MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]
    return tuple(_jsonl(path))


def function_docs(class_name: str) -> list[FunctionDoc]:
    """The BFCL function docs of one backend class (fresh copies, safe to mutate)."""
    return json.loads(json.dumps(_class_docs(class_name)))  # type: ignore[no-any-return]


def entry_function_docs(entry: Entry) -> list[FunctionDoc]:
    """All docs of an entry's classes, in ``involved_classes`` order, as the harness lists them."""
    return [doc for cls in entry.involved_classes for doc in function_docs(cls)]


def doc_param_order(docs: Sequence[FunctionDoc]) -> dict[str, list[str]]:
    """Function name -> parameter names in doc order (for positional arguments)."""
    return {d["name"]: list(d["parameters"].get("properties", {})) for d in docs}


def _entry(raw: dict[str, Any], gt: dict[str, Any], category: str) -> Entry:
    if raw["id"] != gt["id"]:
        raise ValueError(f"question {raw['id']} and ground truth {gt['id']} are out of step")
    missed = {int(t): tuple(names) for t, names in raw.get("missed_function", {}).items()}
    return Entry(
        id=raw["id"],
        category=category,
        questions=raw["question"],
        initial_config=raw.get("initial_config", {}),
        involved_classes=tuple(raw["involved_classes"]),
        ground_truth=gt["ground_truth"],
        missed_function=missed,
    )


@cache
def _load(category: str) -> tuple[Entry, ...]:
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose from {', '.join(CATEGORIES)}")
    base = data_dir()
    questions = _jsonl(base / f"{VERSION_PREFIX}{category}.json")
    answers = _jsonl(base / "possible_answer" / f"{VERSION_PREFIX}{category}.json")
    if len(questions) != len(answers):
        raise ValueError(f"{category}: {len(questions)} questions but {len(answers)} answers")
    return tuple(_entry(q, a, category) for q, a in zip(questions, answers, strict=True))


def load_category(category: str) -> list[Entry]:
    """All entries of one category, in file order (parsed once per process).

    Entries are shared between callers: treat them as read-only (backends deep-copy
    ``initial_config`` when loading).
    """
    return list(_load(category))


def load_all(categories: Sequence[str] = CATEGORIES) -> Iterator[Entry]:
    """Entries of several categories, category by category."""
    for category in categories:
        yield from _load(category)


def get_entry(entry_id: str) -> Entry:
    """One entry by id, e.g. ``"multi_turn_base_0"``."""
    category, _, index = entry_id.rpartition("_")
    entry = _load(category)[int(index)]
    if entry.id != entry_id:
        raise KeyError(entry_id)
    return entry
