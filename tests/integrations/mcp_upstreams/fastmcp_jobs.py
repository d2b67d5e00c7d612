"""A task-capable upstream on ``fastmcp-tasks`` (its in-memory ``memory://`` Docket backend:
no Redis), for ``test_fastmcp_tasks_upstream``.

``fastmcp-tasks`` pins ``fastmcp-slim==4.1.4`` (this project installs 4.2), so it is not a
test dependency: run this file with an interpreter that has it
(``ASYNCFC_FASTMCP_TASKS_PYTHON``). ``python fastmcp_jobs.py [--delay S]``: stdio; ``square``
only runs as a task (``TaskConfig(mode="required")``).
"""

from __future__ import annotations

import argparse
import asyncio

from fastmcp import FastMCP  # type: ignore[import-not-found, unused-ignore]
from fastmcp.utilities.tasks import TaskConfig  # type: ignore[import-not-found, unused-ignore]
from fastmcp_tasks import TasksExtension  # type: ignore[import-not-found, unused-ignore]


def build(delay: float) -> FastMCP:
    mcp = FastMCP("fastjobs")
    mcp.add_extension(TasksExtension(url="memory://"))

    @mcp.tool(task=TaskConfig(mode="required"))
    async def square(x: int) -> int:
        """The square of x, as a background task."""
        await asyncio.sleep(delay)
        return x * x

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.8)
    args = parser.parse_args()
    build(args.delay).run(show_banner=False)


if __name__ == "__main__":
    main()
