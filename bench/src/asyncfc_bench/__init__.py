"""Workloads, statistics and reports that measure asyncfc against the synchronous loop."""

__all__: list[str] = []  # the benchmark is used through its modules and the asyncfc bench command
