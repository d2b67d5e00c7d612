"""Judging a task run by its final tool state and call results; no model is asked.

A task's check reads :class:`Evidence` (the world after the run, every call with its
arguments and result, the answer of each user turn) and returns the problems it finds.
Text is only inspected where a user would read it: an answer that must report values
(numbers are compared as numbers, so ``412.60`` counts as ``412.6``), and the answer
after a failed call, which must say that something failed instead of claiming success.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from asyncfc.local.profile import example_messages
from asyncfc.model_text import AWAIT_TOOL
from asyncfc.scheduler import Call
from asyncfc_bench.tasks.world import World

__all__ = [
    "Check",
    "Evidence",
    "FAILURE_WORDS",
    "Verdict",
    "admits",
    "admits_failure",
    "all_of",
    "answer_numbers",
    "answer_text",
    "file_has",
    "has_number",
    "has_text",
    "judge",
    "leaked_example",
    "looked_up",
    "need",
    "no_emails",
    "no_file",
    "no_success_claims",
    "no_tools",
    "numbers_in",
    "one_email",
    "thermostats",
]

FAILURE_WORDS = re.compile(
    r"\b(fail\w*|error\w*|unable|could ?n[o']t|can ?n[o']t|can't|not able|unavailable|did ?n[o']t|"
    r"was ?n[o']t|is ?n[o']t|not (?:found|available|possible|sent|updated|changed|delivered)|"
    r"does ?n[o']t exist|no such|rejected|refused|invalid|problem|issue|sorry|unfortunately|"
    r"already (?:delivered|cancelled)|no (?:file|order|exchange rate|rate)|tried to [^.]*\bbut)\b",
    re.IGNORECASE,
)
"""Words with which an answer admits that a step did not work."""

_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (thousands separators allowed)."""
    return [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]


def has_number(text: str, value: float, tolerance: float = 0.006) -> bool:
    """Whether ``text`` writes ``value`` (up to rounding to cents)."""
    return any(abs(n - value) <= tolerance for n in numbers_in(text))


def has_text(text: str, *phrases: str) -> bool:
    """Whether ``text`` contains every phrase, case and spacing ignored."""
    flat = " ".join(text.lower().split())
    return all(" ".join(p.lower().split()) in flat for p in phrases)


def admits_failure(text: str) -> bool:
    return FAILURE_WORDS.search(text) is not None


@dataclass
class Evidence:
    """What a run left behind: the state, the calls and the answers."""

    world: World
    calls: Sequence[Call]
    answers: list[str]
    """The final text of each user turn."""
    stop_reasons: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    """What the user wrote, one message per user turn (words of the task are never a leak)."""

    @property
    def answer(self) -> str:
        return self.answers[-1] if self.answers else ""

    def tool_calls(self, name: str | None = None) -> list[Call]:
        """Calls of tools (``await_future`` is not a tool), optionally of one name."""
        return [c for c in self.calls if c.name != AWAIT_TOOL and (name is None or c.name == name)]

    def ran(self, name: str, /, **arguments: Any) -> list[Call]:
        """Calls of ``name`` that ran and succeeded with these arguments (strings compared loosely)."""
        out = []
        for c in self.tool_calls(name):
            if not c.ran or c.error is not None:
                continue
            args = c.resolved_arguments or {}
            if all(_same(args.get(k), v) for k, v in arguments.items()):
                out.append(c)
        return out

    def attempted(self, name: str) -> list[Call]:
        return self.tool_calls(name)

    def emails(self, to: str | None = None) -> list[dict[str, str]]:
        return [m for m in self.world.outbox if to is None or m["to"] == to.lower()]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str):
        return isinstance(actual, str) and " ".join(actual.lower().split()) == " ".join(
            expected.lower().split()
        )
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return abs(float(actual) - float(expected)) < 1e-6
    return bool(actual == expected)


Check = Callable[[Evidence], list[str]]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    """Why it failed (empty when it passed)."""


def judge(check: Check, evidence: Evidence) -> Verdict:
    """Every user turn must end in an answer, then the task's own check must find nothing,
    and no answer or written value may repeat the embedded model's worked example."""
    problems = [f"turn {i + 1}: {r}" for i, r in enumerate(evidence.stop_reasons) if r != "answer"]
    if not problems:
        try:
            problems = check(evidence)
        except Exception as exc:  # a check must not crash the suite on odd model output
            problems = [f"check raised {type(exc).__name__}: {exc}"]
        problems += no_leaked_example(evidence)
    return Verdict(not problems, "; ".join(problems))


# ---------------------------------------------------------------- the worked example

_SENTENCE = re.compile(r"(?<=[.!?])\s+|,\s+")


@cache
def example_markers() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What only the embedded profile's worked example says: its entities (the tools'
    names, the items looked up) and its sentences and clauses (the task, the notes, the
    closing answer), in both the sync and the async form."""
    entities: set[str] = set()
    phrases: set[str] = set()
    for is_async in (False, True):
        for m in example_messages(is_async):
            if m.role in ("user", "assistant") and m.content:
                phrases.update(p.strip(" .") for p in _SENTENCE.split(m.content))
            for c in m.tool_calls:
                if c.name == AWAIT_TOOL:
                    continue
                entities.add(c.name)
                for key, value in json.loads(c.arguments).items():
                    if not isinstance(value, str):
                        continue
                    if key == "item":
                        entities.add(value)
                    else:
                        phrases.update(p.strip(" .") for p in _SENTENCE.split(value))
    phrases = {p for p in phrases if len(p.split()) >= 2 and "fut_" not in p}
    return tuple(sorted(entities)), tuple(sorted(phrases, key=len, reverse=True))


def leaked_example(texts: Iterable[str], allowed: str = "") -> list[str]:
    """The worked example's entities and phrases found in ``texts`` (whole words, case and
    spacing ignored), except those ``allowed`` (the user's request and the tools' results)
    contains: a run that copies the example instead of doing its own task."""
    entities, phrases = example_markers()
    flat_allowed = " ".join(allowed.lower().split())
    found: list[str] = []
    for text in texts:
        flat = " ".join(text.lower().split())
        for marker in (*phrases, *entities):
            m = " ".join(marker.lower().split())
            if marker in found or re.search(rf"(?<!\w){re.escape(m)}(?!\w)", flat_allowed):
                continue
            if re.search(rf"(?<!\w){re.escape(m)}(?!\w)", flat):
                found.append(marker)
    return found


def no_leaked_example(ev: Evidence) -> list[str]:
    """No answer and no value written by a state-changing call may repeat the worked example."""
    writers = {t.name for t in ev.world.tools() if t.writes}
    written = [
        json.dumps(c.resolved_arguments or {}, default=str)
        for c in ev.tool_calls()
        if c.name in writers and c.ran
    ]
    results = [json.dumps(c.value, default=str) for c in ev.tool_calls() if c.error is None]
    found = leaked_example([*ev.answers, *written], " ".join([*ev.prompts, *results]))
    return need(not found, f"repeats the worked example of the model's profile: {found[:4]}")


# ---------------------------------------------------------------- building blocks


def need(ok: bool, problem: str) -> list[str]:
    return [] if ok else [problem]


def looked_up(ev: Evidence, name: str, /, **arguments: Any) -> list[str]:
    """The lookup must have run with these arguments (a value the model did not fetch is made up)."""
    shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return need(bool(ev.ran(name, **arguments)), f"{name}({shown}) never ran successfully")


def answer_numbers(ev: Evidence, *values: float, turn: int = -1) -> list[str]:
    text = ev.answers[turn] if ev.answers else ""
    missing = [v for v in values if not has_number(text, v)]
    return need(not missing, f"answer {text[:160]!r} lacks {missing}")


def answer_text(ev: Evidence, *phrases: str, turn: int = -1) -> list[str]:
    text = ev.answers[turn] if ev.answers else ""
    missing = [p for p in phrases if not has_text(text, p)]
    return need(not missing, f"answer {text[:160]!r} lacks {missing}")


def one_email(
    ev: Evidence, to: str, *, texts: Iterable[str] = (), numbers: Iterable[float] = ()
) -> list[str]:
    """Exactly one email in the outbox, to ``to``, whose body holds the texts and numbers."""
    if len(ev.world.outbox) != 1:
        return [f"{len(ev.world.outbox)} emails sent, expected exactly one to {to}"]
    mail = ev.world.outbox[0]
    problems = need(mail["to"] == to.lower(), f"email went to {mail['to']}, not {to}")
    body = f"{mail['subject']}\n{mail['body']}"
    missing: list[Any] = [t for t in texts if not has_text(body, t)]
    missing += [n for n in numbers if not has_number(body, n)]
    return problems + need(not missing, f"email {mail['body'][:160]!r} lacks {missing}")


def no_emails(ev: Evidence) -> list[str]:
    return need(not ev.world.outbox, f"{len(ev.world.outbox)} email(s) sent, expected none")


def file_has(
    ev: Evidence, path: str, *, texts: Iterable[str] = (), numbers: Iterable[float] = ()
) -> list[str]:
    content = ev.world.files.get(path)
    if content is None:
        return [f"{path} was not written"]
    missing: list[Any] = [t for t in texts if not has_text(content, t)]
    missing += [n for n in numbers if not has_number(content, n)]
    return need(not missing, f"{path} is {content[:160]!r}, lacks {missing}")


def no_file(ev: Evidence, path: str) -> list[str]:
    return need(path not in ev.world.files, f"{path} was written, expected no file")


def admits(ev: Evidence) -> list[str]:
    """The final answer must say that something failed."""
    return need(admits_failure(ev.answer), f"answer does not admit the failure: {ev.answer[:160]!r}")


def no_success_claims(ev: Evidence, claims: Iterable[str]) -> list[str]:
    """No email may state one of ``claims`` unless it also reports a failure."""
    bad = [
        m
        for m in ev.world.outbox
        if any(has_text(m["body"], c) for c in claims) and not admits_failure(m["body"])
    ]
    return need(not bad, f"email claims success after a failure: {bad[0]['body'][:160]!r}" if bad else "")


def no_tools(ev: Evidence) -> list[str]:
    names = [c.name for c in ev.tool_calls()]
    return need(not names, f"called {names} for a question that needs no tool")


def thermostats(ev: Evidence, expected: Mapping[str, float]) -> list[str]:
    return need(
        ev.world.thermostats == dict(expected),
        f"thermostats {ev.world.thermostats}, expected {dict(expected)}",
    )


def all_of(*checks: Check) -> Check:
    """One check out of several (problems of all of them)."""

    def check(ev: Evidence) -> list[str]:
        return [p for c in checks for p in c(ev)]

    return check
