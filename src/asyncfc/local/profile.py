"""What the embedded Qwen2.5-Coder models need to do multi-step tool tasks, and
:func:`model`, the embedded model ready to use.

Measured on the 1.5B (``asyncfc bench tasks``): rules alone make a small model repeat
calls or invent values; one finished example task in the conversation makes it call each
tool once, pass values (or, in async mode, future ids) on, await a value before deciding
on it, and stop. The example uses tools of its own (``lookup_price``, ``save_note``), so
it teaches the shape of a task, not a particular tool list; it comes in the form each
mode really shows, so sync and async get the same lesson.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from ..model_text import AWAIT_TOOL, EARLIER, placeholder, resolved
from ..models.base import Message, ModelProfile, ToolCall
from ..models.openai_chat import OpenAIChatModel
from .server import ensure_server
from .weights import DEFAULT_SIZE

__all__ = [
    "EMBEDDED_PROFILE",
    "INSTRUCTIONS",
    "LocalModel",
    "example_messages",
    "model",
]

INSTRUCTIONS = (
    "Call one tool per message. The example task before the user's request shows how to work: "
    "its tools (lookup_price, save_note) may not be available now; use only the tools you are given."
)

_TASK = (
    "Look up the prices of coffee and tea, and save a note with both prices. "
    "If tea costs less than 2 dollars, also save a note that says 'buy tea'."
)

_ANSWER = "I saved the coffee and tea prices in a note, and since tea costs 1.5 dollars, a note to buy tea."
"""The example's answer names the example's own items in every clause: no clause of it fits
another task, so a model that copies it is caught (the task suite's judge looks for it). The
closing it replaces began "I saved a note with both prices", a clause that fits any task with
a note, and the 1.5B copied it into a payment-reminder task. (Two terser closings, one that
opened with the example's prices, leaked more on the 1.5B: it reported the example's prices
when its own task had none.)"""


def _example(is_async: bool) -> list[Message]:
    """One finished task: two lookups, a note with both values, a decision on one of them."""
    messages: list[Message] = [Message("user", _TASK)]
    n = 0

    def call(name: str, args: dict[str, Any], result: Any) -> None:
        nonlocal n
        n += 1
        call_id = f"example_{n}"
        messages.append(Message("assistant", "", [ToolCall(call_id, name, json.dumps(args))]))
        text = result if isinstance(result, str) else json.dumps(result)
        messages.append(Message("tool", text, tool_call_id=call_id))

    if not is_async:
        call("lookup_price", {"item": "coffee"}, "4.5")
        call("lookup_price", {"item": "tea"}, "1.5")
        call("save_note", {"text": "coffee: 4.5 dollars, tea: 1.5 dollars"}, "saved")
        call("save_note", {"text": "buy tea"}, "saved")
    else:  # what the runtime really shows: placeholders, values delivered with later results
        call("lookup_price", {"item": "coffee"}, placeholder("fut_91"))
        call(
            "lookup_price",
            {"item": "tea"},
            {**placeholder("fut_92"), EARLIER: [resolved("fut_91", 4.5)]},
        )
        call(
            "save_note",
            {"text": "coffee: fut_91 dollars, tea: fut_92 dollars"},
            placeholder("fut_93"),
        )
        call(
            AWAIT_TOOL,
            {"ids": ["fut_92"]},
            {**resolved("fut_92", 1.5), EARLIER: [resolved("fut_93", "saved")]},
        )
        call("save_note", {"text": "buy tea"}, resolved("fut_94", "saved"))
    messages.append(Message("assistant", _ANSWER))
    return messages


_FORMS = {False: _example(False), True: _example(True)}

EMBEDDED_PROFILE = ModelProfile(
    instructions=INSTRUCTIONS,
    example=lambda is_async: _FORMS[is_async],
    answer_repeats=True,
    step_s=1.5,
    prefill_token_s=0.018,
)
"""The profile of the embedded models (the same in every mode, so comparisons stay fair).

Its cost priors are the 1.5B's on a 2-core CPU (the task-suite sweep of
``docs/results/tasks-sweep-local.json``: 0.73 s of prefill a step, 18 ms a prompt token,
36 ms an output token); the first measured step of a conversation replaces them."""

_COST_PRIORS = {"0.5b": (1.0, 0.009)}
"""``step_s`` and ``prefill_token_s`` of the 0.5B, from ``docs/results/tasks-sweep-local-0.5b.json``
(the 1.5B's are the profile's)."""


class LocalModel(OpenAIChatModel):
    """The embedded model: an OpenAI-compatible client of the local llama-server, with the
    profile of its ``size`` (:func:`profile_for`); ``options`` are :class:`OpenAIChatModel`'s."""

    def __init__(self, model: str, *, size: str = DEFAULT_SIZE, **options: Any) -> None:
        super().__init__(model, **options)
        self.profile = profile_for(size)


def model(
    size: str = DEFAULT_SIZE,
    *,
    temperature: float = 0.0,
    seed: int = 0,
    max_tokens: int = 384,
    **options: Any,
) -> LocalModel:
    """The embedded model, its server started (pulled and built on first use) or found running.

    Greedy and seeded by default, so runs repeat. The server keeps running after this
    process ends (so later runs reuse it and its prompt cache); ``asyncfc model stop`` or
    :func:`asyncfc.local.stop` stops it.
    """
    server = ensure_server(size)
    return LocalModel(
        server.model,
        size=size,
        base_url=server.base_url,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        **options,
    )


def profile_for(size: str = DEFAULT_SIZE) -> ModelProfile:
    """The embedded profile with the cost priors of the model of this size."""
    if size not in _COST_PRIORS:
        return EMBEDDED_PROFILE
    step_s, token_s = _COST_PRIORS[size]
    return dataclasses.replace(EMBEDDED_PROFILE, step_s=step_s, prefill_token_s=token_s)


def example_messages(is_async: bool) -> Sequence[Message]:
    """The embedded profile's worked example (for inspection and token counting)."""
    return _FORMS[is_async]
