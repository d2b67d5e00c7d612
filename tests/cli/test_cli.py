"""Command-line conventions every ``asyncfc`` command keeps: ``--version``, and bad option
values refused with exit code 2 and the reason (never a traceback)."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from asyncfc.cli import build_parser


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"asyncfc {version('asyncfc')}"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["bench", "load", "--sessions", "0"], "--sessions: must be a positive number, got 0"),
        (["bench", "load", "--workers", "-1"], "--workers: must be a non-negative number, got -1"),
        (["bench", "overhead", "--in-flight", "100,0"], "--in-flight: must be a positive number, got 0"),
        (["bench", "synthetic", "--chains", "many"], "--chains: expected a number, got 'many'"),
        (["demo", "--lookup-latency", "nan"], "--lookup-latency: must be a non-negative number, got nan"),
        (["bench", "tasks", "--runs", "0"], "--runs: must be a positive number, got 0"),
        (["bench", "bfcl", "--delay", "-1"], "--delay: must be a non-negative number, got -1"),
        (
            ["mcp", "serve", "--upstream", "x", "--timeout", "0"],
            "--timeout: must be a positive number, got 0",
        ),
    ],
)
def test_bad_numbers_exit_2_with_the_reason(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert reason in capsys.readouterr().err
