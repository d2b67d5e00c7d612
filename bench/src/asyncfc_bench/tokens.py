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
    "async_overhead",
    "prompt_tokens",
]


def prompt_tokens(base_url: str, request: ModelRequest, *, timeout: float = 60.0) -> int:
    """Tokens of ``request``'s prompt: rendered by the server's chat template, then tokenized."""
    root = base_url.removesuffix("/").removesuffix("/v1")
    body: dict[str, Any] = {"messages": to_openai_messages(request.messages)}
    if request.tools:
        body["tools"] = to_openai_tools(request.tools)
    with httpx.Client(timeout=timeout) as client:
        prompt = client.post(f"{root}/apply-template", json=body).raise_for_status().json()["prompt"]
        tokens = client.post(f"{root}/tokenize", json={"content": prompt}).raise_for_status().json()["tokens"]
    return len(tokens)


def async_overhead(base_url: str, sync_agent: Agent, async_agent: Agent) -> dict[str, int]:
    """What async mode adds to the first prompt of a task, in tokens, and where it comes from.

    ``instructions``: the placeholder explanation; ``await_tool``: the ``await_future`` tool;
    ``schemas_and_example``: references allowed in the schemas, and the example in its
    async form. Later steps pay for none of it again while the prefix stays cached.
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
    return {
        "sync_prompt": sync,
        "async_prompt": full,
        "total": full - sync,
        "instructions": instructions,
        "await_tool": await_tool,
        "schemas_and_example": full - sync - instructions - await_tool,
    }
