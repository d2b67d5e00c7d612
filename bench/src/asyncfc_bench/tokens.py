"""Prompt tokens as the embedded model counts them (llama-server's own template and
tokenizer), to see what asynchronous mode adds to every prompt."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from asyncfc.agent import Agent
from asyncfc.models.base import Message, ModelRequest
from asyncfc.models.openai_chat import to_openai_messages, to_openai_tools

__all__ = [
    "PART_VALUE",
    "async_overhead",
    "prompt_parts",
    "prompt_token_ids",
    "prompt_tokens",
    "text_tokens",
]

PART_VALUE = "Paris: 18 C, light rain"
"""The tool value the per-step parts of :func:`prompt_parts` carry (a task-suite weather result)."""


def prompt_tokens(base_url: str, request: ModelRequest, *, timeout: float = 60.0) -> int:
    """Tokens of ``request``'s prompt: rendered by the server's chat template, then tokenized."""
    return len(prompt_token_ids(base_url, request, timeout=timeout))


def prompt_token_ids(base_url: str, request: ModelRequest, *, timeout: float = 60.0) -> list[int]:
    """The token ids of ``request``'s prompt, as llama-server at ``base_url`` would read it."""
    root = base_url.removesuffix("/").removesuffix("/v1")
    body: dict[str, Any] = {"messages": to_openai_messages(request.messages)}
    if request.tools:
        body["tools"] = to_openai_tools(request.tools)
    with httpx.Client(timeout=timeout) as client:
        prompt = client.post(f"{root}/apply-template", json=body).raise_for_status().json()["prompt"]
        tokens = client.post(f"{root}/tokenize", json={"content": prompt}).raise_for_status().json()["tokens"]
    return [int(t) for t in tokens]


def text_tokens(base_url: str, text: str, *, timeout: float = 60.0) -> int:
    """Tokens of ``text`` alone, by the server's tokenizer (no chat template around it)."""
    root = base_url.removesuffix("/").removesuffix("/v1")
    with httpx.Client(timeout=timeout) as client:
        return len(
            client.post(f"{root}/tokenize", json={"content": text}).raise_for_status().json()["tokens"]
        )


def prompt_parts(base_url: str, example: Any = None) -> dict[str, int]:
    """Tokens of each text async mode adds over sync, one by one (``asyncfc.model_text``'s own
    functions, so the figures follow the texts): ``value`` is what sync mode shows for a tool
    result (:data:`PART_VALUE`), for comparison; ``placeholder`` the pending answer that
    replaces it; ``delivery`` what a value adds when it rides along a later tool message;
    ``await_answer`` an ``await_future`` answer for that value; ``delivered_again`` one for a
    value already given; ``repeat_note`` the note beside a repeated call; ``answer_now`` the
    line after a step of repeats; ``instructions`` the async instructions; ``await_tool`` the
    ``await_future`` spec; ``example_sync``/``example_async`` the profile's worked example in
    each form, rendered by the chat template (``example``: a profile's ``example`` callable)."""
    from asyncfc.futures import dumps
    from asyncfc.model_text import (
        ANSWER_NOW,
        ASYNC_INSTRUCTIONS,
        AWAIT_SPEC,
        await_answer,
        delivered,
        placeholder,
        repeat_note,
        resolved,
        with_earlier,
    )

    def count(text: str) -> int:
        return text_tokens(base_url, text)

    pending = dumps(placeholder("fut_2"))
    out = {
        "value": count(PART_VALUE),
        "placeholder": count(pending),
        "delivery": count(with_earlier(pending, [resolved("fut_1", PART_VALUE)])) - count(pending),
        "await_answer": count(await_answer([resolved("fut_1", PART_VALUE)])),
        "delivered_again": count(dumps(delivered("fut_1"))),
        "repeat_note": count(repeat_note("fut_1")),
        "answer_now": count(ANSWER_NOW),
        "instructions": count(ASYNC_INSTRUCTIONS),
        "await_tool": count(dumps({"type": "function", "function": AWAIT_SPEC})),
    }
    if example is not None:
        empty = prompt_tokens(base_url, ModelRequest(messages=[], tools=[]))
        for is_async, key in ((False, "example_sync"), (True, "example_async")):
            request = ModelRequest(messages=list(example(is_async)), tools=[])
            out[key] = prompt_tokens(base_url, request) - empty
    return out


def async_overhead(base_url: str, sync_agent: Agent, async_agent: Agent) -> dict[str, Any]:
    """What async mode adds to the first prompt of a task, in tokens, and where it comes from.

    ``instructions``: the placeholder explanation; ``await_tool``: the ``await_future`` tool;
    ``schemas_and_example``: references allowed in the schemas, and the example in its
    async form. Later steps pay for none of it again while the prefix stays cached.
    ``parts``: each text async mode adds, counted alone (:func:`prompt_parts`).
    """
    user = Message("user", "x")

    def count(agent: Agent, *, drop_await: bool = False, drop_instructions: bool = False) -> int:
        session = agent.session()
        if drop_instructions:
            session.runtime.instructions = ""
        session.messages.append(user)
        request = session.next_request()
        if drop_await:
            request = dataclasses.replace(
                request, tools=[t for t in request.tools if t["name"] != "await_future"]
            )
        return prompt_tokens(base_url, request)

    sync = count(sync_agent)
    full = count(async_agent)
    instructions = full - count(async_agent, drop_instructions=True)
    await_tool = full - count(async_agent, drop_await=True)
    profile = getattr(async_agent.model, "profile", None)
    return {
        "parts": prompt_parts(base_url, getattr(profile, "example", None)),
        "sync_prompt": sync,
        "async_prompt": full,
        "total": full - sync,
        "instructions": instructions,
        "await_tool": await_tool,
        "schemas_and_example": full - sync - instructions - await_tool,
    }
