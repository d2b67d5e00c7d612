"""``asyncfc mcp serve``: the argument parser and the command (imports ``mcp`` only when run)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from .options import grace_option, non_negative_int, positive_float, positive_int

__all__ = [
    "add_parser",
    "cmd_mcp_serve",
]

EPILOG = """\
examples:
  asyncfc mcp serve --upstream "python my_server.py"
  asyncfc mcp serve --upstream fs="npx -y @modelcontextprotocol/server-filesystem /tmp" \\
                    --upstream http://127.0.0.1:9000/mcp --annotations tools.toml
  asyncfc mcp serve --transport http --port 8765 --upstream "python my_server.py"
"""


def add_parser(sub: Any) -> None:
    """Add ``mcp serve`` to the top-level subcommands."""
    mcp = sub.add_parser("mcp", help="MCP proxy: asyncfc futures in front of MCP servers")
    actions = mcp.add_subparsers(dest="mcp", required=True)
    srv = actions.add_parser(
        "serve",
        help="serve upstream MCP servers' tools with futures (stdio or streamable HTTP)",
        description="An MCP server in front of one or more upstream MCP servers: each call answers with "
        "its value or a placeholder, later calls may pass futures, values of earlier calls come "
        "back with later results (each once), await_future waits for them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    srv.add_argument(
        "upstreams",
        nargs="*",
        metavar="UPSTREAM",
        help="[NAME=]COMMAND_OR_URL, like --upstream",
    )
    srv.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="[NAME=]COMMAND_OR_URL",
        help="an upstream MCP server: a command line (stdio) or an http(s):// URL (streamable HTTP); "
        "repeatable; NAME defaults to the name the server reports",
    )
    srv.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="how clients reach the proxy: stdio or http (streamable HTTP) (default: stdio)",
    )
    srv.add_argument("--host", default="127.0.0.1", help="HTTP address to bind (default: 127.0.0.1)")
    srv.add_argument(
        "--port",
        type=non_negative_int,
        default=8000,
        help="HTTP port, 0 picks a free one (default: 8000); path /mcp",
    )
    srv.add_argument(
        "--annotations",
        metavar="FILE",
        help="TOML file overriding read/write sets, pure, output_example, timeout per tool "
        "(default: from MCP tool annotations)",
    )
    srv.add_argument(
        "--grace",
        type=grace_option,
        default="auto",
        help="auto: answer a call with its value when waiting for it is cheaper than a placeholder, "
        "learning each tool's latency; or seconds a call may take and still answer with its value "
        "(default: auto)",
    )
    srv.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        help="per-call time limit in seconds for tools without their own (default: 60)",
    )
    srv.add_argument(
        "--max-result-chars",
        type=positive_int,
        default=None,
        help="truncate longer results for the model (default: none)",
    )
    srv.add_argument(
        "--prefix-tools",
        action="store_true",
        help="name every tool SERVER_TOOL (default: only tools whose names clash)",
    )
    srv.set_defaults(func=cmd_mcp_serve)


def cmd_mcp_serve(args: argparse.Namespace) -> int:
    try:
        from ..integrations.mcp import ProxyConfig, load_annotations, parse_upstream, serve
        from ..integrations.mcp.upstream import UpstreamUnavailable
    except ImportError as exc:
        print(f"asyncfc mcp needs the mcp extra (pip install 'asyncfc[mcp]'): {exc}", file=sys.stderr)
        return 3
    from ..errors import ConfigurationError

    try:
        specs = [parse_upstream(t) for t in [*args.upstream, *args.upstreams]]
        annotations = load_annotations(args.annotations)
        config = ProxyConfig(grace=args.grace, timeout_s=args.timeout, max_result_chars=args.max_result_chars)
        asyncio.run(
            serve(
                specs,
                annotations=annotations,
                transport=args.transport,
                host=args.host,
                port=args.port,
                config=config,
                prefix=args.prefix_tools,
            )
        )
    except ConfigurationError as exc:
        print(f"asyncfc mcp: {exc}", file=sys.stderr)
        return 2
    except UpstreamUnavailable as exc:
        print(f"asyncfc mcp: {exc}", file=sys.stderr)
        return 3
    return 0
