"""``asyncfc bench synthetic --server --wire``: the Responses wire beside the chat wire."""

from __future__ import annotations

import json
import subprocess
import sys

SMALL = ["--chains", "2", "--length", "2", "--delay", "0.05", "--decode", "0.01"]


def _synthetic(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "asyncfc.cli", "bench", "synthetic", "--server", *SMALL, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_every_wire_beside_the_first_and_the_old_keys_kept() -> None:
    done = _synthetic("--wire", "chat,responses,responses-native", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    # the first wire's figures stay where they always were
    assert data["wire"] == "chat" and data["transport"] == "http+openai-sdk"
    assert {"modes", "speedup", "adapter_overhead_ms", "in_process_modes", "consistent"} <= set(data)
    assert list(data["wires"]) == ["chat", "responses", "responses-native"]
    for wire, summary in data["wires"].items():
        assert summary["consistent"], wire  # every mode of every wire did the same work
        assert set(summary["speedup"]) == {"parallel", "async"}, wire
        assert summary["modes"]["async"]["errors"] == 0, wire
    assert data["wires"]["responses"]["transport"] == "http+openai-sdk+responses"


def test_an_unknown_wire_is_refused() -> None:
    done = _synthetic("--wire", "chat,grpc")
    assert done.returncode == 2
    assert "grpc" in done.stdout and "responses-native" in done.stdout
