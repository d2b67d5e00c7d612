"""A step that must answer in text keeps its tools (so the prompt's cached prefix holds) and
says so with each API's own ``tool_choice`` none."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncfc import Agent, tool
from asyncfc.model_text import ANSWER_NOW
from asyncfc.models import ModelProfile
from asyncfc.models.anthropic_messages import AnthropicMessagesModel
from asyncfc.models.base import Message, ModelRequest
from asyncfc.models.openai_chat import OpenAIChatModel
from asyncfc.models.openai_responses import OpenAIResponsesModel
from asyncfc.testing import ScriptedCall, SimServer

TOOLS = [{"name": "look", "description": "Look.", "parameters": {"type": "object", "properties": {}}}]
ANSWER = ModelRequest([Message("user", "go")], TOOLS, tool_choice="none")


def test_each_adapter_sends_tool_choice_none_with_its_tools() -> None:
    chat = OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", api_key="k")
    responses = OpenAIResponsesModel("m", base_url="http://127.0.0.1:1/v1", api_key="k")
    claude = AnthropicMessagesModel("m", base_url="http://127.0.0.1:1", api_key="k")
    try:
        params = chat.request_params(ANSWER)
        assert params["tool_choice"] == "none" and params["tools"][0]["function"]["name"] == "look"
        body = responses.request_params(ANSWER)["extra_body"]
        assert body["tool_choice"] == "none" and body["tools"][0]["name"] == "look"
        params = claude.request_params(ANSWER)
        assert params["tool_choice"] == {"type": "none"} and params["tools"][0]["name"] == "look"
        # the default leaves tool_choice to the API (auto), as before
        assert "tool_choice" not in chat.request_params(ModelRequest(ANSWER.messages, TOOLS))
    finally:
        for model in (chat, responses, claude):
            asyncio.run(model.aclose())


def test_the_answer_now_step_keeps_the_prompt_prefix_on_the_wire() -> None:
    """Through a real HTTP server: after a step of repeats only, the next request differs from
    the one before only in its new messages and tool_choice (the tools, which a chat template
    renders into the system message, are the same), so a prefix cache keeps the conversation."""

    @tool(pure=True)
    def look(x: int) -> int:
        """Look x up."""
        return x + 1

    class Profiled(OpenAIChatModel):
        profile = ModelProfile(answer_repeats=True)

    turns: list[Any] = [[ScriptedCall("look", {"x": 1})], [ScriptedCall("look", {"x": 1})], "the answer is 2"]
    with SimServer(turns) as srv:

        async def go() -> str:
            async with Profiled("sim", base_url=srv.base_url, api_key="k") as model:
                result = await Agent(model, [look], mode="async").run("look 1 up")
                return result.text

        assert asyncio.run(go()) == "the answer is 2"
    before, answer_now = (r.body for r in srv.model_requests[1:3])
    assert "tool_choice" not in before and answer_now["tool_choice"] == "none"
    assert answer_now["tools"] == before["tools"]
    assert answer_now["messages"][: len(before["messages"])] == before["messages"]
    assert answer_now["messages"][-1] == {"role": "user", "content": ANSWER_NOW}
