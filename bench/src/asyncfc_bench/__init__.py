"""Workloads, statistics and reports that measure asyncfc against the synchronous loop."""
