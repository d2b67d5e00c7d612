"""Two slow lookups and an email that needs both: async mode overlaps them.

Runs anywhere (a scripted model stands in for the LLM). Swap in
``OpenAIChatModel("model", base_url=...)`` to drive a real endpoint.
"""

import asyncio

from asyncfc import Agent, tool
from asyncfc.testing import Ref, ScriptedCall, ScriptedModel


@tool(pure=True)
async def get_weather(city: str) -> str:
    """Current weather for a city."""
    await asyncio.sleep(0.5)
    return f"sunny in {city}"


outbox: list[tuple[str, str]] = []


@tool(writes=["outbox"])
def send_email(to: str, body: str) -> str:
    """Send an email."""
    outbox.append((to, body))
    return f"sent to {to}: {body}"


def script() -> ScriptedModel:
    return ScriptedModel(
        [
            [ScriptedCall("get_weather", {"city": "Paris"}), ScriptedCall("get_weather", {"city": "Tokyo"})],
            [ScriptedCall("send_email", {"to": "bob@example.com", "body": Ref(1)})],
            "Done: Bob has the weather.",
        ],
        call_s=0.2,
        text_s=0.2,
    )


async def main() -> None:
    for mode in ("sync", "async"):
        outbox.clear()
        result = await Agent(script(), [get_weather, send_email], mode=mode).run(
            "Email Bob the weather in Paris."
        )
        print(f"{mode:5} {result.wall_s:.2f} s  {result.text}  email: {result.calls[-1].value}")
        assert outbox == [("bob@example.com", "sunny in Paris")], outbox  # the same email in every mode


if __name__ == "__main__":
    asyncio.run(main())
