"""Holding blind writes (``Agent(hold_blind_writes=...)``): a state-changing call the model
wrote while results it had not seen were pending is not run; those results are delivered
and the call runs only when the model emits it again.

The model is scripted to write blind, the way the embedded 1.5B did (an invoice of 412.0
while the conversion that gives 325.48 was pending): it writes the value it has seen, or
a made-up one while it sees a placeholder.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest

from asyncfc import tool
from asyncfc.agent import Agent, RunResult
from asyncfc.errors import ConfigurationError
from asyncfc.model_text import EARLIER
from asyncfc.models.base import Message
from asyncfc.testing.scripted import Ref, ScriptedCall, ScriptedModel, Turn, TurnSpec, call_results, shown
from asyncfc.tools import Tool
from conftest import assert_protocol_valid, deliveries_in_transcript, run, tool_message

MADE_UP = 412.0
RATE = 1.0849333


class Books:
    """Invoices and a currency conversion the test releases when it chooses."""

    def __init__(self) -> None:
        self.invoices: list[float] = []
        self.release = asyncio.Event()
        self.release.set()  # released unless a test holds the conversion back

    def tools(self) -> list[Tool]:
        @tool(pure=True)
        async def convert(amount: float) -> float:
            """Convert dollars to euros."""
            await self.release.wait()
            return round(amount / RATE, 2)

        @tool(reads=["rates"])
        async def get_rate(currency: str) -> float:
            """The exchange rate of a currency."""
            await self.release.wait()
            return RATE

        @tool(writes=["invoices"])
        async def save_invoice(amount: float) -> str:
            """Record an invoice."""
            self.invoices.append(float(amount))
            return "saved"

        @tool(reads=["invoices"])
        async def list_invoices() -> list[float]:
            """The recorded invoices."""
            return list(self.invoices)

        @tool(writes=["outbox"])
        async def send_email(body: str) -> str:
            """Send an email (write-only: it returns an acknowledgement)."""
            return "sent"

        return [convert, get_rate, save_invoice, list_invoices, send_email]


def seen(transcript: Sequence[Message], n: int) -> Any:
    """What the model knows of call ``n``: its value wherever it was delivered (its own tool
    message, a later one's ``resolved_earlier``), or its future id while it is pending."""
    own = shown(Ref(n), call_results(transcript))
    if not (isinstance(own, str) and own.startswith("fut_")):
        return own
    for m in transcript:
        if m.role != "tool":
            continue
        try:
            body = json.loads(m.content)
        except ValueError:
            continue
        items = body if isinstance(body, list) else [body]
        items += [e for it in items if isinstance(it, dict) for e in it.get(EARLIER, [])]
        for it in items:
            if isinstance(it, dict) and it.get("future") == own and it.get("status") == "resolved":
                return it["value"]
    return own


def blind_amount(transcript: Sequence[Message]) -> float:
    value = seen(transcript, 1)
    return MADE_UP if isinstance(value, str) and value.startswith("fut_") else float(value)


def last_tool_messages(transcript: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in reversed(transcript):
        if m.role != "tool":
            break
        try:
            body = json.loads(m.content)
        except ValueError:  # sync mode: the value as text
            body = m.content
        out.insert(0, body if isinstance(body, dict) else {"value": body})
    return out


def confirm_or_finish(transcript: Sequence[Message]) -> TurnSpec:
    """Emit a held invoice again with the value now seen; else finish."""
    if any(b.get("status") == "not_run" for b in last_tool_messages(transcript)):
        return [ScriptedCall("save_invoice", {"amount": blind_amount(transcript)})]
    return "done"


def run_books(mode: str, turns: Sequence[Turn], books: Books, **options: Any) -> RunResult:
    options = {"hold_blind_writes": mode == "async", **options}  # the note, unless a test says
    agent = Agent(ScriptedModel(turns), books.tools(), mode=mode, grace_s=0.0, **options)

    async def go() -> RunResult:
        async with agent:
            return await agent.run("Convert 353.12 dollars to euros and record the invoice.")

    return run(go())


def invoice_script(books: Books) -> list[Turn]:
    def write_blind(transcript: Sequence[Message]) -> TurnSpec:
        amount = blind_amount(transcript)
        books.release.set()  # the conversion finishes only after the model wrote its call
        return [ScriptedCall("save_invoice", {"amount": amount})]

    return [[ScriptedCall("convert", {"amount": 353.12})], write_blind, confirm_or_finish, "done"]


def test_a_blind_write_is_held_until_the_value_is_delivered_then_runs_once_when_emitted_again() -> None:
    books = Books()
    books.release.clear()
    result = run_books("async", invoice_script(books), books)
    convert, save = result.calls
    assert (convert.name, save.name) == ("convert", "save_invoice")
    assert books.invoices == [convert.value] == [325.48]  # the made-up 412.0 never ran
    assert [json.loads(h.arguments) for h in result.held] == [{"amount": MADE_UP}]
    assert save.ran and save.resolved_arguments == {"amount": 325.48}
    # the held call's tool message says why, and the pending value came with it
    messages = result.messages
    held_id = next(
        tc.id for m in messages for tc in m.tool_calls if json.loads(tc.arguments) == {"amount": MADE_UP}
    )
    held = json.loads(tool_message(messages, held_id).content)
    assert held["status"] == "not_run" and held["waiting_for"] == [convert.id]
    assert "emit the same call again" in held["note"]
    assert held["resolved_earlier"] == [{"future": convert.id, "status": "resolved", "value": 325.48}]
    # exactly once: every value delivered once, the held call answered once and never run
    assert all(c.deliveries == 1 for c in result.calls)
    assert deliveries_in_transcript(messages, convert.id) == 1
    assert_protocol_valid(messages)
    assert result.stop_reason == "answer" and result.text == "done"


def test_the_final_state_equals_sync_and_without_the_hold_the_made_up_value_is_written() -> None:
    sync_books = Books()
    sync = run_books("sync", invoice_script(sync_books), sync_books)
    assert sync.held == [] and sync_books.invoices == [325.48]

    held_books = Books()
    held_books.release.clear()
    run_books("async", invoice_script(held_books), held_books)
    assert held_books.invoices == sync_books.invoices

    blind_books = Books()
    blind_books.release.clear()
    blind = run_books("async", invoice_script(blind_books), blind_books, hold_blind_writes=False)
    assert blind.held == [] and blind_books.invoices == [MADE_UP]  # what the option prevents


def test_passing_the_future_or_a_pure_or_read_only_call_is_not_held() -> None:
    books = Books()
    books.release.clear()

    def pass_it_on(transcript: Sequence[Message]) -> TurnSpec:
        books.release.set()
        return [
            ScriptedCall("save_invoice", {"amount": seen(transcript, 1)}),  # "fut_1": the runtime fills it in
            ScriptedCall("convert", {"amount": 10}),
            ScriptedCall("get_rate", {"currency": "EUR"}),
            ScriptedCall("list_invoices"),
        ]

    result = run_books("async", [[ScriptedCall("convert", {"amount": 353.12})], pass_it_on, "done"], books)
    assert result.held == []
    assert result.calls[1].raw_arguments == '{"amount": "fut_1"}'
    assert books.invoices == [325.48]
    assert [c.name for c in result.calls if c.ran] == [
        "convert",
        "save_invoice",
        "convert",
        "get_rate",
        "list_invoices",
    ]


def test_a_write_after_a_pending_write_only_call_or_in_the_same_step_as_a_lookup_is_not_held() -> None:
    """Only results the model would have seen in sync mode count: an earlier step's pending
    lookups. A write-only call's acknowledgement is no value to copy, and a lookup of the
    same step the model could not have seen in any mode."""
    books = Books()
    books.release.clear()

    def then_write(transcript: Sequence[Message]) -> TurnSpec:
        books.release.set()
        return [ScriptedCall("save_invoice", {"amount": 1.0})]

    turns: list[Turn] = [
        [ScriptedCall("send_email", {"body": "starting"})],
        [ScriptedCall("convert", {"amount": 5.0}), ScriptedCall("save_invoice", {"amount": 2.0})],
        then_write,
        "done",
    ]
    result = run_books("async", turns, books)
    # the third step's write is blind to the second step's conversion (pending): held
    assert [json.loads(h.arguments) for h in result.held] == [{"amount": 1.0}]
    assert books.invoices == [2.0]  # the script did not emit the held call again: it never ran


def test_emitting_a_held_call_again_runs_it_even_while_other_values_are_pending() -> None:
    books = Books()
    books.release.clear()
    steps = {"n": 0}

    def write(transcript: Sequence[Message]) -> TurnSpec:
        steps["n"] += 1
        if steps["n"] == 1:
            return [ScriptedCall("save_invoice", {"amount": MADE_UP})]
        books.release.clear()  # a new lookup pending: the confirmed call still runs
        return [
            ScriptedCall("get_rate", {"currency": "GBP"}),
            ScriptedCall("save_invoice", {"amount": MADE_UP}),
        ]

    def release_and_confirm(transcript: Sequence[Message]) -> TurnSpec:
        books.release.set()
        return write(transcript)

    def release_and_answer(transcript: Sequence[Message]) -> TurnSpec:
        books.release.set()  # the lookup of the third step ends: the turn settles at once
        return "done"

    turns: list[Turn] = [
        [ScriptedCall("convert", {"amount": 1.0})],
        write,
        release_and_confirm,
        release_and_answer,
    ]

    async def go() -> RunResult:
        async with Agent(
            ScriptedModel(turns), books.tools(), mode="async", grace_s=0.0, hold_blind_writes=True
        ) as agent:
            task = asyncio.ensure_future(agent.run("go"))
            await asyncio.sleep(0)
            books.release.set()  # let the first conversion finish so the hold can deliver it
            return await task

    books.release.clear()
    result = run(go())
    assert len(result.held) == 1
    assert books.invoices == [MADE_UP]  # confirmed: run once
    saves = [c for c in result.calls if c.name == "save_invoice"]
    assert len(saves) == 1 and saves[0].ran


def test_a_later_call_of_the_step_that_touches_a_held_write_is_held_after_it() -> None:
    """Nothing runs ahead of a call it must follow: the listing waits for the held invoice."""
    books = Books()
    books.release.clear()

    def write_then_list(transcript: Sequence[Message]) -> TurnSpec:
        amount = blind_amount(transcript)
        books.release.set()
        return [
            ScriptedCall("save_invoice", {"amount": amount}),
            ScriptedCall("list_invoices"),
            ScriptedCall("get_rate", {"currency": "EUR"}),  # no conflict with invoices: runs
        ]

    def confirm_both(transcript: Sequence[Message]) -> TurnSpec:
        if any(b.get("status") == "not_run" for b in last_tool_messages(transcript)):
            return [
                ScriptedCall("save_invoice", {"amount": blind_amount(transcript)}),
                ScriptedCall("list_invoices"),
            ]
        return "done"

    turns: list[Turn] = [[ScriptedCall("convert", {"amount": 353.12})], write_then_list, confirm_both, "done"]
    result = run_books("async", turns, books)
    assert [h.name for h in result.held] == ["save_invoice", "list_invoices"]
    after = json.loads(tool_message(result.messages, "call_2").content)
    assert after["status"] == "not_run" and "save_invoice" in after["note"]
    listing = [c for c in result.calls if c.name == "list_invoices"]
    assert len(listing) == 1 and listing[0].value == [325.48]  # it saw the invoice, as in sync
    assert [c.name for c in result.calls] == ["convert", "get_rate", "save_invoice", "list_invoices"]


def test_the_option() -> None:
    books = Books()
    model = ScriptedModel(["done"])
    assert Agent(model, books.tools(), mode="async").hold_blind_writes == "retract"
    assert Agent(model, books.tools(), mode="async", hold_blind_writes=True).hold_blind_writes is True
    assert Agent(model, books.tools(), mode="sync").hold_blind_writes is False
    assert Agent(model, books.tools(), mode="parallel").hold_blind_writes is False
    assert Agent(model, books.tools(), mode="async", hold_blind_writes=False).hold_blind_writes is False
    assert Agent(model, books.tools(), hold_blind_writes="retract").hold_blind_writes == "retract"
    with pytest.raises(ConfigurationError, match="hold_blind_writes"):
        Agent(model, books.tools(), hold_blind_writes="yes")  # type: ignore[arg-type]


def test_a_write_that_passes_a_future_on_is_not_held_while_other_lookups_are_pending() -> None:
    """The quickstart's shape: two lookups, then an email passing one of them on. The model
    uses futures for what it has not seen, so the call runs (the other lookup is not its
    business); a literal it writes beside a future is not checked (the task suite counts
    such writes)."""
    books = Books()
    books.release.clear()

    def email_one(transcript: Sequence[Message]) -> TurnSpec:
        books.release.set()
        return [ScriptedCall("save_invoice", {"amount": seen(transcript, 1)})]

    turns: list[Turn] = [
        [ScriptedCall("convert", {"amount": 353.12}), ScriptedCall("get_rate", {"currency": "GBP"})],
        email_one,
        "done",
    ]
    result = run_books("async", turns, books)
    assert result.held == [] and books.invoices == [325.48]


def test_retract_drops_the_held_call_and_shows_the_values_as_an_await() -> None:
    """``hold_blind_writes="retract"``: the model never sees its blind call; its step keeps
    only the calls that ran and the values follow as an ``await_future`` answer, as if it
    had awaited them; it then writes the call anew."""
    books = Books()
    books.release.clear()

    def rewrite(transcript: Sequence[Message]) -> TurnSpec:
        if isinstance(seen(transcript, 1), float):
            return [ScriptedCall("save_invoice", {"amount": seen(transcript, 1)})]
        return "done"

    turns: list[Turn] = [*invoice_script(books)[:2], rewrite, "done"]
    result = run_books("async", turns, books, hold_blind_writes="retract")
    assert books.invoices == [325.48]
    assert [json.loads(h.arguments) for h in result.held] == [{"amount": MADE_UP}]
    sent = [tc for m in result.messages for tc in m.tool_calls]
    assert [tc.name for tc in sent][:3] == ["convert", "await_future", "save_invoice"]  # then the settle
    assert all(c.deliveries == 1 for c in result.calls)
    assert deliveries_in_transcript(result.messages, result.calls[0].id) == 1
    assert_protocol_valid(result.messages)
