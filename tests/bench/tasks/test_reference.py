"""``asyncfc bench tasks --reference``: the reference solutions played as the model, their
prompts counted with a one-slot prefix cache. The tokenizer here is a stand-in (one token
per character of the rendered messages, named so): the command uses the embedded server's."""

from __future__ import annotations

import asyncio
import json

import pytest

from asyncfc.cli import main
from asyncfc.models.base import ModelRequest
from asyncfc.models.openai_chat import to_openai_messages
from asyncfc.testing.simserver import SimServer
from asyncfc_bench import tokens
from asyncfc_bench.tasks import BY_NAME, Config
from asyncfc_bench.tasks.reference import PrefixCache, ReferenceModel
from asyncfc_bench.tasks.runner import run_task

FAST = Config(time_scale=0.001, agent_options={"grace_s": 0.0})


def characters(request: ModelRequest) -> list[int]:
    """Stand-in tokenizer: each character of the messages as JSON is a token."""
    return [ord(c) for c in json.dumps(to_openai_messages(request.messages))]


def test_the_prefix_cache_holds_the_common_prefix_of_the_last_prompt() -> None:
    cache = PrefixCache()
    assert cache.serve([1, 2, 3]) == 0
    assert cache.serve([1, 2, 3, 4]) == 3
    assert cache.serve([1, 9]) == 1  # an edit: only what comes before it is cached
    assert cache.serve([]) == 0


def test_a_reference_run_passes_and_counts_only_what_each_step_adds() -> None:
    task = BY_NAME["msft_vs_aapl"]
    caches = {"sync": PrefixCache(), "async": PrefixCache()}
    runs = {
        mode: asyncio.run(run_task(task, mode, ReferenceModel(task, characters, caches[mode]), FAST))
        for mode in ("sync", "async")
    }
    for mode, run in runs.items():
        assert run.passed, (mode, run.reason)
        assert 0 < run.cached_prompt_tokens < run.prompt_tokens
    # the second run of a mode finds the first one's prefix cached: its system prompt and tools
    again = asyncio.run(run_task(task, "sync", ReferenceModel(task, characters, caches["sync"]), FAST))
    assert again.uncached_prompt_tokens == runs["sync"].uncached_prompt_tokens
    assert runs["async"].uncached_prompt_tokens > runs["sync"].uncached_prompt_tokens  # placeholders cost


def test_reference_against_a_server_without_a_tokenizer_exits_3_before_any_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SimServer([]) as srv:  # an OpenAI-compatible endpoint, but not llama-server
        code = main(
            ["bench", "tasks", "--reference", "--base-url", srv.base_url, "--model", "m", "--tasks", "1"]
        )
        assert [r.path for r in srv.model_requests] == ["/apply-template"]  # no run was started
    assert code == 3
    assert "/apply-template and /tokenize" in capsys.readouterr().err


def test_a_reference_run_through_the_cli_reports_the_reference_as_its_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tokens, "prompt_token_ids", lambda base_url, request: characters(request))
    with SimServer([]) as srv:  # the endpoint is never asked for a completion: the solution answers
        code = main(
            ["bench", "tasks", "--reference", "--base-url", srv.base_url, "--model", "m", "--tasks", "1"]
            + ["--modes", "sync,async", "--time-scale", "0.001", "--json"]
        )
        assert srv.model_requests == []
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["model"] == "reference" and out["config"]["reference"] is True
    assert out["config"]["profile"] is False and out["async_prompt_overhead"] is None
    assert {m: d["passed"] for m, d in out["modes"].items()} == {"sync": 1, "async": 1}
    # tools 1000x faster: too quick for a placeholder to pay, so async reads exactly what sync reads
    unc = {m: d["uncached_prompt_tokens_per_task"] for m, d in out["modes"].items()}
    assert unc["sync"] > 0 and unc["async"] == unc["sync"]
