"""Each task's reference solution played as the model, its prompts counted by a real tokenizer.

The reference solutions pass futures on wherever they can, issue independent calls in one
step, and await only a value they decide on: what a model that uses futures as intended
does. Played through the same agent as a real model (``asyncfc bench tasks --reference``),
with every request rendered by the embedded model's chat template and tokenizer and a
one-slot prefix cache like llama-server's, they show what asyncfc's own texts cost in
prompt tokens when the model's behaviour is not what decides it. The model takes no time,
so the run's speed figures are the tools' alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence

from asyncfc.models.base import ModelEvent, ModelRequest, ResponseDone, Usage

from .catalog import Task
from .script import SolutionModel

__all__ = ["PrefixCache", "ReferenceModel", "Tokenize"]

Tokenize = Callable[[ModelRequest], Sequence[int]]
"""A request's prompt as token ids (``asyncfc_bench.tokens.prompt_token_ids`` for llama-server)."""


class PrefixCache:
    """A server's one cache slot: the last prompt's tokens, whose common prefix with the next
    prompt is not processed again."""

    def __init__(self) -> None:
        self.tokens: Sequence[int] = ()

    def serve(self, tokens: Sequence[int]) -> int:
        """Take ``tokens`` as the next prompt; return how many of them were cached."""
        cached = 0
        for a, b in zip(tokens, self.tokens, strict=False):
            if a != b:
                break
            cached += 1
        self.tokens = tokens
        return cached


class ReferenceModel:
    """Plays ``task``'s reference solution; each response's usage is its prompt counted by
    ``tokenize``, with what ``cache`` (one per mode, shared by that mode's runs) held."""

    name = "reference"

    def __init__(self, task: Task, tokenize: Tokenize, cache: PrefixCache) -> None:
        self.inner = SolutionModel(task.solution())
        self.tokenize = tokenize
        self.cache = cache
        self._warm = False

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        if not self._warm:  # as the suite warms a server: the fixed prefix (system prompt, tools) is held
            self._warm = True
            first_user = next((i for i, m in enumerate(request.messages) if m.role == "user"), 0)
            prefix = dataclasses.replace(request, messages=request.messages[:first_user])
            self.cache.serve(await asyncio.to_thread(self.tokenize, prefix))
        tokens = await asyncio.to_thread(self.tokenize, request)
        cached = self.cache.serve(tokens)
        async for event in self.inner.stream(request):
            if isinstance(event, ResponseDone):
                usage = Usage(len(tokens), event.response.usage.output_tokens, cached)
                event = ResponseDone(dataclasses.replace(event.response, usage=usage))
            yield event

    async def aclose(self) -> None:
        return None
