"""The ``asyncfc`` command.

The library brings ``asyncfc model`` (the embedded local model) and ``asyncfc mcp serve``
(the MCP proxy). Other distributions add subcommands through the ``asyncfc.commands``
entry point group: ``asyncfc-bench`` adds ``asyncfc bench ...`` and ``asyncfc demo``.

Exit codes: 0 success, 1 the run finished but failed a check, 2 bad usage, 3 a needed
component (model server, package) is unavailable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any

from .mcp import add_parser as add_mcp

__all__ = ["build_parser", "main"]

COMMAND_GROUP = "asyncfc.commands"
"""Entry point group: each entry is a function ``add(subparsers)`` that adds a subcommand."""

BENCH_COMMANDS = {
    "bench": "run a benchmark (needs asyncfc-bench)",
    "demo": "synthetic benchmark, then a real task on the local model (needs asyncfc-bench)",
}
"""Subcommands of the benchmark distribution, shown even when it is not installed."""

MISSING_BENCH = "asyncfc {command} comes with the benchmark suite: pip install asyncfc-bench"


def cmd_model(args: argparse.Namespace) -> int:
    from .. import local

    try:
        if args.action == "pull":
            print(f"verified {local.pull(args.size)}")
        elif args.action == "serve":
            print(local.ensure_server(args.size).base_url)
        else:
            print(f"stopped {len(local.stop(args.size))} server(s)")
    except local.LocalModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


def _missing(args: argparse.Namespace) -> int:
    print(MISSING_BENCH.format(command=args.command), file=sys.stderr)
    return 3


def _version() -> str:
    try:
        return version("asyncfc")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncfc", description="Future-based asynchronous function calling for LLM agents."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    model = sub.add_parser("model", help="the embedded local model (Qwen2.5-Coder via llama-server)")
    model.add_argument(
        "action", choices=["pull", "serve", "stop"], help="pull weights / start server / stop it"
    )
    model.add_argument("--size", choices=["0.5b", "1.5b"], default="1.5b", help="model size (default 1.5b)")
    model.set_defaults(func=cmd_model)
    add_mcp(sub)
    added: set[str] = set()
    for entry in entry_points(group=COMMAND_GROUP):
        add: Any = entry.load()
        add(sub)
        added.add(entry.name)
    for name, text in BENCH_COMMANDS.items():
        if name not in added:  # a stub that says what to install
            stub = sub.add_parser(name, help=text, add_help=False)
            stub.add_argument("rest", nargs=argparse.REMAINDER)
            stub.set_defaults(func=_missing)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
