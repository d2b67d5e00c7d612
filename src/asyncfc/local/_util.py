"""Shared helpers for the embedded local model: cache location, progress, locks, pip."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import LocalModelError

Progress = Callable[[str], None]
"""Receives one human-readable status line; lets the CLI print and tests stay silent."""


def stderr_progress(message: str) -> None:
    """Default progress sink: stderr, so it never mixes with a command's real output."""
    print(f"[asyncfc] {message}", file=sys.stderr, flush=True)


def silent(message: str) -> None:
    """Progress sink that drops everything (tests, library use)."""


def cache_dir() -> Path:
    """Where weights, the built server and its state live.

    `$ASYNCFC_CACHE` wins so CI and tests can redirect it; then the XDG convention.
    """
    explicit = os.environ.get("ASYNCFC_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "asyncfc"
    return Path.home() / ".cache" / "asyncfc"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise pull/build/serve across processes (parallel test workers, two shells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: best effort, no locking
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def pip(args: Sequence[str], *, what: str) -> None:
    """Run pip of the current interpreter; fail with its output rather than a bare exit code."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise LocalModelError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def cpu_count() -> int:
    """CPUs this process may use (respects affinity/cgroup pinning where the OS exposes it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
