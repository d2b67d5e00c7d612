"""Ground truth through our loader, parser and tools agrees with the official BFCL code.

All 800 entries of the four multi-turn categories are replayed once (parse -> validate ->
tool) on fresh instances; the official ``multi_turn_checker`` must accept the resulting
trajectories and reject them with one call dropped, and every result string must equal
what the official ``execute_multi_turn_func_call`` returns for the same call.
"""

from __future__ import annotations

import copy
import decimal
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("bfcl_eval")

import mpmath  # noqa: E402
from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils  # noqa: E402
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import (  # noqa: E402
    multi_turn_checker,
    response_checker,
    state_checker,
)
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import (  # noqa: E402
    execute_multi_turn_func_call,
)

from asyncfc.tools import ArgumentsError  # noqa: E402
from asyncfc_bench.bfcl import (  # noqa: E402
    ADDITIONAL_FUNCTION_PROMPT,
    CATEGORIES,
    CLASSES,
    Entry,
    entry_function_docs,
    get_entry,
    instances_for,
    load_all,
    load_category,
    make_tools,
    parse_call,
    signature_param_order,
    to_call_string,
)

PREFIX = "asyncfc_test_"
_runs = itertools.count()

KNOWN_INVALID_GT = {"close_ticket(ticket_id='ticket_001')"}
"""Ground-truth calls that break their own schema (an integer id given as a string, entry
173 of every category). Our tools reject them before they run; the replay then calls the
backend directly, as the official ``eval`` does, to keep the trajectory comparable."""


def model_name() -> str:
    """A fresh name: the official code caches instances per (model, entry) forever."""
    return f"{PREFIX}{next(_runs)}"


@pytest.fixture(autouse=True)
def _drop_official_instances() -> Iterator[None]:
    yield
    cache = vars(multi_turn_utils)
    for key in [k for k in cache if k.startswith(PREFIX)]:
        del cache[key]


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """Backends set mpmath's and decimal's precision process-wide; leave them as found."""
    dps, prec = mpmath.mp.dps, decimal.getcontext().prec
    yield
    mpmath.mp.dps, decimal.getcontext().prec = dps, prec


def checker_entry(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "initial_config": entry.initial_config,
        "involved_classes": list(entry.involved_classes),
    }


@dataclass
class Replay:
    entry: Entry
    calls: list[list[str]]
    """Per turn, the calls as our tools ran them, rendered back to BFCL strings."""
    results: list[list[str]]
    instances: dict[str, Any]
    invalid: list[str]

    def trajectory(self) -> list[list[list[str]]]:
        """The checker's shape: turns -> steps -> calls; one step per non-empty turn."""
        return [[calls] if calls else [] for calls in self.calls]


def replay(entry: Entry) -> Replay:
    instances = instances_for(entry)
    tools = {t.name: t for t in make_tools(instances)}
    order = signature_param_order(instances)
    out = Replay(entry, [], [], instances, [])
    for turn in entry.ground_truth:
        calls, results = [], []
        for source in turn:
            name, kwargs = parse_call(source, order)
            tool = tools[name]
            try:
                kwargs = tool.validate(kwargs)
            except ArgumentsError:
                out.invalid.append(source)
            results.append(tool.fn(**kwargs))
            calls.append(to_call_string(name, kwargs))
        out.calls.append(calls)
        out.results.append(results)
    return out


@pytest.fixture(scope="module")
def replays() -> list[Replay]:
    return [replay(entry) for entry in load_all()]


# --------------------------------------------------------------------------- loader


def test_categories_load_with_matching_ground_truth() -> None:
    for category in CATEGORIES:
        entries = load_category(category)
        assert len(entries) == 200
        assert [e.id for e in entries] == [f"{category}_{i}" for i in range(200)]
        for e in entries:
            assert e.category == category and len(e.questions) == len(e.ground_truth) >= 1
            assert set(e.involved_classes) <= set(CLASSES)
            assert e.long_context == (category == "multi_turn_long_context")
    assert get_entry("multi_turn_base_150").involved_classes[0] == "TravelAPI"


def test_every_class_appears_in_every_category() -> None:
    for category in CATEGORIES:
        seen = {c for e in load_category(category) for c in e.involved_classes}
        assert seen == set(CLASSES), category


def test_miss_func_hides_functions_until_their_turn() -> None:
    entry = get_entry("multi_turn_miss_func_0")
    assert entry.missed_function == {3: ("sort",)}
    assert entry.questions[3] == [] and entry.ground_truth[2] == []
    assert entry.user_messages(3) == [{"role": "user", "content": ADDITIONAL_FUNCTION_PROMPT}]
    assert entry.user_messages(0) == entry.questions[0]
    assert entry.hidden_functions(2) == {"sort"} and entry.hidden_functions(3) == frozenset()
    assert entry.revealed_functions(3) == ("sort",)
    before, after = entry.functions(2), entry.functions(3)
    assert "sort" not in {d["name"] for d in before}
    assert [d["name"] for d in after] == [d["name"] for d in before] + ["sort"]
    assert len(after) == len(entry_function_docs(entry))
    for e in load_category("multi_turn_miss_func"):
        (turn,) = e.missed_function
        assert e.questions[turn] == [] and e.ground_truth[turn - 1] == []
        assert all(q for t, q in enumerate(e.questions) if t != turn)


def test_miss_param_has_an_empty_ground_truth_turn() -> None:
    for e in load_category("multi_turn_miss_param"):
        assert not e.missed_function
        assert any(gt == [] for gt in e.ground_truth)
        assert all(e.user_messages(t) == e.questions[t] for t in range(e.turns))


# --------------------------------------------------------------------------- executor


def sample() -> list[Entry]:
    """The first entry of every primary-class block, plus ones using the four secondary classes."""
    picked: dict[str, Entry] = {}
    for category in CATEGORIES:
        for e in load_category(category):
            for cls in e.involved_classes:
                picked.setdefault(f"{category}/{cls}", e)
    return list({e.id: e for e in picked.values()}.values())


def test_sample_of_every_class_matches_official_executor_turn_by_turn() -> None:
    entries = sample()
    assert {c for e in entries for c in e.involved_classes} == set(CLASSES)
    for entry in entries:
        name = model_name()
        ours = replay(entry)
        all_ours: list[str] = []
        for turn, gt in enumerate(entry.ground_truth):
            official, official_instances = execute_multi_turn_func_call(
                gt,
                entry.initial_config,
                list(entry.involved_classes),
                name,
                entry.id,
                long_context=entry.long_context,
            )
            assert ours.results[turn] == official, (entry.id, turn)
            all_ours += ours.results[turn]
        # the end state, as the official state checker sees it
        assert state_checker(ours.instances, official_instances)["valid"], entry.id
        assert response_checker(all_ours, official, len(entry.ground_truth) - 1)["valid"]


def test_every_result_matches_official_executor(replays: list[Replay]) -> None:
    mismatches = []
    for r in replays:
        name = model_name()
        for turn, gt in enumerate(r.entry.ground_truth):
            official, _ = execute_multi_turn_func_call(
                gt,
                r.entry.initial_config,
                list(r.entry.involved_classes),
                name,
                r.entry.id,
                long_context=r.entry.long_context,
            )
            if official != r.results[turn]:
                mismatches.append((r.entry.id, turn, official, r.results[turn]))
    assert not mismatches, mismatches[:3]
    assert sum(len(t) for r in replays for t in r.results) == 4625


def test_only_known_ground_truth_calls_fail_validation(replays: list[Replay]) -> None:
    invalid = {(r.entry.id, s) for r in replays for s in r.invalid}
    assert {s for _, s in invalid} == KNOWN_INVALID_GT
    assert {i for i, _ in invalid} == {f"{c}_173" for c in CATEGORIES}


# --------------------------------------------------------------------------- checker


def test_official_checker_accepts_all_800_replays(replays: list[Replay]) -> None:
    failures = []
    for r in replays:
        verdict = multi_turn_checker(
            r.trajectory(), r.entry.ground_truth, checker_entry(r.entry), r.entry.category, model_name()
        )
        if not verdict["valid"]:
            failures.append((r.entry.id, verdict["error_type"]))
    assert not failures, failures[:5]


def test_official_checker_rejects_a_dropped_call(replays: list[Replay]) -> None:
    accepted = []
    for r in replays:
        bad = copy.deepcopy(r.trajectory())
        last = max(t for t, calls in enumerate(r.calls) if calls)
        bad[last][0].pop()
        if not bad[last][0]:
            bad[last] = []
        verdict = multi_turn_checker(
            bad, r.entry.ground_truth, checker_entry(r.entry), r.entry.category, model_name()
        )
        if verdict["valid"]:
            accepted.append(r.entry.id)
    assert not accepted, accepted[:5]


def test_checker_runs_on_empty_ground_truth_turns_with_model_silence() -> None:
    """miss_func / miss_param: the model stays silent where the ground truth is ``[]``."""
    for entry_id in ("multi_turn_miss_func_0", "multi_turn_miss_param_0"):
        r = replay(get_entry(entry_id))
        assert [] in r.entry.ground_truth
        verdict = multi_turn_checker(
            r.trajectory(), r.entry.ground_truth, checker_entry(r.entry), r.entry.category, model_name()
        )
        assert verdict == {"valid": True}
