"""Build and run llama.cpp's `llama-server` as the embedded OpenAI-compatible endpoint.

PyPI ships llama.cpp only as the source vendored in the `llama-cpp-python` sdist, so the
server binary is compiled once (portable flags) and cached. The models' own chat template
asks for `<tool_call>` tags the models never write; it is patched to ask for the ```json
fence they do write, which llama-server's template autoparser then turns into real
OpenAI `tool_calls` (streamed too).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from ..errors import LocalModelError
from ._gguf import read_string
from ._util import (
    Progress,
    cache_dir,
    cpu_count,
    file_lock,
    pip,
    silent,
    stderr_progress,
    tail,
)
from .weights import DEFAULT_SIZE, SIZES, ModelSpec, pull, spec_for

__all__ = [
    "LocalServer",
    "ServerError",
    "TemplatePatchError",
    "build_llama_server",
    "chat_template",
    "ensure_server",
    "patch_template",
    "release",
    "running",
    "serve",
    "server_binary",
    "stop",
]

LLAMA_CPP_PYTHON: Final = "llama-cpp-python==0.3.36"
CMAKE_FLAGS: Final = (
    "-DGGML_NATIVE=OFF",  # portable binary: the cache may be shared with other CPUs
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DCMAKE_BUILD_TYPE=Release",
)
HOST: Final = "127.0.0.1"
HEALTH_TIMEOUT_S: Final = 300.0


class ServerError(LocalModelError):
    """llama-server could not be built, started or reached."""


class TemplatePatchError(LocalModelError):
    """The model's chat template no longer has the `<tool_call>` text we rewrite."""


# ---------------------------------------------------------------------------- build


def server_binary(cache: Path | None = None) -> Path:
    """Path of the cached llama-server binary (it may not exist yet)."""
    return (cache or cache_dir()) / "bin" / "llama-server"


def _find_tool(name: str) -> str | None:
    """A build tool on PATH, or one pip put next to this interpreter."""
    found = shutil.which(name)
    if found:
        return found
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _build_tools(progress: Progress) -> tuple[str, str | None]:
    """cmake (required) and ninja (optional); fetched from PyPI when the system lacks them."""
    missing = [name for name in ("cmake", "ninja") if _find_tool(name) is None]
    if missing:
        progress(f"installing {' '.join(missing)} from PyPI into {sys.executable}")
        pip(["install", "--quiet", *missing], what=f"installing {' '.join(missing)}")
    cmake = _find_tool("cmake")
    if cmake is None:
        raise ServerError("cmake is needed to build llama-server and could not be installed")
    ninja = _find_tool("ninja")
    if ninja is None and shutil.which("make") is None:
        raise ServerError("neither ninja nor make is available to build llama-server")
    return cmake, ninja


@contextlib.contextmanager
def _status(progress: Progress, quiet: bool) -> Iterator[Callable[[str], None]]:
    """Yield a status updater: one line rewritten in place on a terminal, a line every 30 s
    otherwise (a log file stays readable)."""
    if quiet:
        yield silent
        return
    if sys.stderr.isatty():
        width = [0]

        def rewrite(message: str) -> None:
            line = message.replace("\n", " ")[:150]
            sys.stderr.write("\r" + line.ljust(width[0]))
            sys.stderr.flush()
            width[0] = len(line)

        try:
            yield rewrite
        finally:
            sys.stderr.write("\r" + " " * width[0] + "\r")
        return
    last = [0.0]

    def throttled(message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 30.0:
            last[0] = now
            progress(message)

    yield throttled


def _run_logged(cmd: Sequence[str], log: Path, label: str, progress: Progress, quiet: bool) -> None:
    """Run a build step, appending its output to `log` and showing elapsed time and last line."""
    started = time.monotonic()
    with open(log, "a", encoding="utf-8", buffering=1) as log_file:
        log_file.write(f"\n$ {' '.join(cmd)}\n")
        log_file.flush()
        with subprocess.Popen(  # closes the pipe when done: nothing left for the collector to warn about
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as proc:
            assert proc.stdout is not None
            stdout = proc.stdout
            last_line = [""]

            def pump() -> None:
                for line in stdout:
                    log_file.write(line)
                    if line.strip():
                        last_line[0] = line.strip()

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            with _status(progress, quiet) as update:
                while reader.is_alive():
                    elapsed = int(time.monotonic() - started)
                    update(f"{label} ({elapsed // 60}:{elapsed % 60:02d}) {last_line[0][:90]}")
                    reader.join(0.5)
            returncode = proc.wait()
    if returncode != 0:
        raise ServerError(f"{label} failed (exit {returncode}); log {log}:\n{tail(log)}")


def _extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    """Unpack only `vendor/llama.cpp` from the sdist and return its directory."""
    with tarfile.open(sdist) as tar:
        members = [
            m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name and not m.name.endswith("/.git")
        ]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python without PEP 706 backport
            tar.extractall(dest, members=members)  # trusted, pinned sdist
    sources = sorted(dest.glob("*/vendor/llama.cpp/CMakeLists.txt"))
    if not sources:
        raise ServerError(f"{sdist.name} does not contain vendor/llama.cpp")
    return sources[0].parent


def build_llama_server(
    *,
    progress: Progress = stderr_progress,
    quiet: bool = False,
    cache: Path | None = None,
    force: bool = False,
) -> Path:
    """Compile llama-server from the pinned llama-cpp-python sdist once; return the binary.

    Takes minutes (about 6-7 on 2 cores); output goes to `<cache>/build-llama-server.log`.
    """
    if quiet:
        progress = silent
    root = cache or cache_dir()
    binary = server_binary(root)
    stamp = binary.with_name(binary.name + ".version")

    def built() -> bool:
        return binary.is_file() and stamp.is_file() and stamp.read_text().strip() == LLAMA_CPP_PYTHON

    if built() and not force:
        return binary
    with file_lock(root / "locks" / "build.lock"):
        if built() and not force:
            return binary
        cmake, ninja = _build_tools(progress)
        log = root / "build-llama-server.log"
        log.write_text(f"building llama-server from {LLAMA_CPP_PYTHON}\n")
        progress(f"building llama-server from {LLAMA_CPP_PYTHON} (several minutes; log: {log})")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="llama-build-", dir=root) as tmp_name:
            tmp = Path(tmp_name)
            progress(f"downloading the {LLAMA_CPP_PYTHON} sdist")
            pip(
                [
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "--dest",
                    str(tmp),
                    LLAMA_CPP_PYTHON,
                ],
                what="downloading the llama-cpp-python sdist",
            )
            sdists = sorted(tmp.glob("llama_cpp_python-*.tar.gz"))
            if not sdists:
                raise ServerError(f"pip download produced no llama-cpp-python sdist in {tmp}")
            source = _extract_llama_cpp(sdists[0], tmp / "src")
            build = tmp / "build"
            generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
            _run_logged(
                [cmake, "-S", str(source), "-B", str(build), *generator, *CMAKE_FLAGS],
                log,
                "configuring llama.cpp",
                progress,
                quiet,
            )
            _run_logged(
                [cmake, "--build", str(build), "--target", "llama-server", "--parallel", str(cpu_count())],
                log,
                "compiling llama-server",
                progress,
                quiet,
            )
            produced = build / "bin" / "llama-server"
            if not produced.is_file():
                raise ServerError(f"build finished but {produced} is missing; log {log}")
            binary.parent.mkdir(parents=True, exist_ok=True)
            staging = binary.with_name(binary.name + ".tmp")
            shutil.copy2(produced, staging)
            staging.chmod(0o755)
            os.replace(staging, binary)
        stamp.write_text(LLAMA_CPP_PYTHON + "\n")
        progress(f"llama-server built in {time.monotonic() - started:.0f} s: {binary}")
        return binary


# ------------------------------------------------------------------------- template

# The system-prompt instruction. The 1.5B's template writes `{{\"name\"...}}` (doubled
# braces, an upstream quirk); both forms are accepted and normalised to one brace.
_SYSTEM_INSTRUCTION = re.compile(
    r"within <tool_call></tool_call> XML tags:\\n<tool_call>\\n\{+"
    r"(\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>)"
    r"\}+\\n</tool_call>"
)
# How earlier assistant tool calls are rendered back into the prompt.
_ASSISTANT_OPEN = ('{{- \'\\n<tool_call>\\n{"name": "\' }}', '{{- \'\\n```json\\n{"name": "\' }}')
_ASSISTANT_CLOSE = ("{{- '}\\n</tool_call>' }}", "{{- '}\\n```' }}")


def patch_template(template: str) -> str:
    """Rewrite the Qwen2.5 tool template to ask for a ```json fence instead of `<tool_call>`.

    Raises TemplatePatchError if any of the three places is not found, so a changed
    upstream template fails loudly instead of silently losing tool calls.
    """
    if "<tool_call>" not in template and "```json" in template:
        return template  # already patched
    patched, n_system = _SYSTEM_INSTRUCTION.subn(
        lambda m: "in a ```json code block:\\n```json\\n{" + m.group(1) + "}\\n```", template
    )
    counts = [n_system]
    for old, new in (_ASSISTANT_OPEN, _ASSISTANT_CLOSE):
        counts.append(patched.count(old))
        patched = patched.replace(old, new)
    if 0 in counts or "<tool_call>" in patched:
        raise TemplatePatchError(
            "chat template does not have the expected <tool_call> instructions "
            f"(matches: system={counts[0]}, open={counts[1]}, close={counts[2]}); cannot ask for ```json"
        )
    return patched


def chat_template(gguf_path: Path, name: str | None = None, *, cache: Path | None = None) -> Path:
    """Write the patched chat template of `gguf_path` to `<cache>/templates/<name>.jinja`."""
    template = patch_template(read_string(gguf_path, "tokenizer.chat_template"))
    out = (cache or cache_dir()) / "templates" / f"{name or gguf_path.stem}.jinja"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_text(encoding="utf-8") != template:
        staging = out.with_name(out.name + f".{os.getpid()}.tmp")
        staging.write_text(template, encoding="utf-8")
        os.replace(staging, out)
    return out


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class LocalServer:
    """A running llama-server: what an OpenAI client needs plus what `stop` needs."""

    size: str
    model: str
    base_url: str  # http://127.0.0.1:PORT/v1, for openai.OpenAI(base_url=..., api_key=<any>)
    pid: int
    port: int
    log: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LocalServer:
        data: dict[str, Any] = json.loads(text)
        return cls(
            size=str(data["size"]),
            model=str(data["model"]),
            base_url=str(data["base_url"]),
            pid=int(data["pid"]),
            port=int(data["port"]),
            log=str(data["log"]),
        )


def _state_path(root: Path, size: str) -> Path:
    return root / f"server-{size}.json"


def _read_state(path: Path) -> LocalServer | None:
    try:
        return LocalServer.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    """Whether `pid` is a live (non-zombie) process; reaps it if it is our dead child."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    return True


def _is_llama_server(pid: int) -> bool:
    """Guard against pid reuse: only signal a process that is really llama-server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _alive(pid)  # no /proc (macOS): trust the state file
    return b"llama-server" in cmdline


def _healthy(server: LocalServer, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"http://{HOST}:{server.port}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn_detached(cmd: Sequence[str], log: Path) -> int:
    """Start `cmd` in its own session (survives this process and Ctrl-C), output to `log`.

    It gets no descriptor of ours beyond its log: one it inherited (a lock `flock(1)` holds
    for the command that started the server, a pipe a test reads to its end) would stay
    open, and held, for as long as the server runs.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return os.posix_spawn(
            cmd[0],
            list(cmd),
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
                *((os.POSIX_SPAWN_CLOSE, inherited) for inherited in _inheritable_fds()),
            ],
            setsid=True,
        )
    finally:
        os.close(fd)


def _inheritable_fds() -> list[int]:
    """This process's descriptors above 2 that a child would inherit (the others close at exec)."""
    try:
        names = os.listdir("/dev/fd")
    except OSError:
        return []
    out: list[int] = []
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
                if os.get_inheritable(fd):
                    out.append(fd)
    return out


def _terminate(pid: int, grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not _alive(pid):
            return
        time.sleep(0.1)


def _wait_healthy(server: LocalServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(server.pid):
            raise ServerError(
                f"llama-server exited during startup; log {server.log}:\n{tail(Path(server.log))}"
            )
        if _healthy(server):
            return
        time.sleep(0.25)
    raise ServerError(
        f"llama-server not healthy after {timeout:.0f} s; log {server.log}:\n{tail(Path(server.log))}"
    )


def running(size: str = DEFAULT_SIZE, *, cache: Path | None = None) -> LocalServer | None:
    """The healthy server recorded for `size`, or None."""
    spec = spec_for(size)
    server = _read_state(_state_path(cache or cache_dir(), spec.size))
    if server and _alive(server.pid) and _is_llama_server(server.pid) and _healthy(server):
        return server
    return None


def _start(
    spec: ModelSpec,
    *,
    root: Path,
    port: int,
    threads: int | None,
    ctx: int,
    progress: Progress,
    health_timeout: float,
) -> LocalServer:
    state = _state_path(root, spec.size)
    previous = _read_state(state)
    if previous and _alive(previous.pid) and _is_llama_server(previous.pid):
        raise ServerError(
            f"a {spec.size} llama-server is already running at {previous.base_url} (pid {previous.pid}); "
            "use ensure_server() to reuse it or stop() it first"
        )
    gguf = pull(spec, progress=progress, cache=root)
    binary = build_llama_server(progress=progress, cache=root)
    template = chat_template(gguf, spec.size, cache=root)
    port = port or _free_port()
    cmd = [
        str(binary),
        "-m", str(gguf),
        "--alias", spec.model,
        "--jinja",
        "--chat-template-file", str(template),
        "-c", str(ctx),
        "-t", str(threads or cpu_count()),
        "-np", "1",
        "--host", HOST,
        "--port", str(port),
    ]  # fmt: skip
    log = root / f"server-{spec.size}.log"
    progress(f"starting llama-server ({spec.model}) on port {port}")
    started = time.monotonic()
    pid = _spawn_detached(cmd, log)
    server = LocalServer(
        size=spec.size,
        model=spec.model,
        base_url=f"http://{HOST}:{port}/v1",
        pid=pid,
        port=port,
        log=str(log),
    )
    staging = state.with_name(state.name + ".tmp")
    staging.write_text(server.to_json())
    os.replace(staging, state)
    try:
        _wait_healthy(server, health_timeout)
    except BaseException:
        _terminate(pid, grace=3.0)
        state.unlink(missing_ok=True)
        raise
    progress(f"llama-server healthy after {time.monotonic() - started:.1f} s at {server.base_url}")
    return server


def serve(
    size: str = DEFAULT_SIZE,
    *,
    port: int = 0,
    threads: int | None = None,
    ctx: int = 8192,
    progress: Progress = stderr_progress,
    cache: Path | None = None,
    health_timeout: float = HEALTH_TIMEOUT_S,
) -> LocalServer:
    """Start a detached llama-server for `size` (pulling and building first if needed).

    `port=0` picks a free port; `threads` defaults to the usable CPU count. The server
    outlives this process; its pid and URL are kept in `<cache>/server-<size>.json`.
    """
    spec = spec_for(size)
    root = cache or cache_dir()
    with file_lock(root / "locks" / f"server-{spec.size}.lock"):
        return _start(
            spec,
            root=root,
            port=port,
            threads=threads,
            ctx=ctx,
            progress=progress,
            health_timeout=health_timeout,
        )


def ensure_server(
    size: str = DEFAULT_SIZE,
    *,
    progress: Progress = stderr_progress,
    cache: Path | None = None,
    ctx: int = 8192,
) -> LocalServer:
    """Reuse the recorded healthy server for `size`, else pull, build and serve one."""
    spec = spec_for(size)
    root = cache or cache_dir()
    with file_lock(root / "locks" / f"server-{spec.size}.lock"):
        state = _state_path(root, spec.size)
        server = _read_state(state)
        if server and _alive(server.pid) and _is_llama_server(server.pid):
            with contextlib.suppress(ServerError):
                _wait_healthy(server, timeout=60.0)  # may still be loading the model
                return server
            _terminate(server.pid, grace=3.0)  # wedged: replace it
        state.unlink(missing_ok=True)
        return _start(
            spec, root=root, port=0, threads=None, ctx=ctx, progress=progress, health_timeout=HEALTH_TIMEOUT_S
        )


def stop(size: str | None = None, *, cache: Path | None = None, grace: float = 5.0) -> list[LocalServer]:
    """Stop the recorded server for `size` (all sizes if None); return the ones that were running."""
    root = cache or cache_dir()
    sizes = [spec_for(size).size] if size else [s for s in SIZES if _state_path(root, s).exists()]
    stopped: list[LocalServer] = []
    for name in sizes:
        state = _state_path(root, name)
        server = _read_state(state)
        if server and _alive(server.pid) and _is_llama_server(server.pid):
            _terminate(server.pid, grace)
            stopped.append(server)
        state.unlink(missing_ok=True)
    return stopped


def release(size: str = DEFAULT_SIZE, *, started_here: bool, cache: Path | None = None) -> str:
    """Stop the server for ``size`` if the calling command started it; otherwise leave it
    running. Returns the sentence that tells the user which."""
    if started_here:
        stop(size, cache=cache)
        return f"stopped the {size} llama-server this command started"
    server = running(size, cache=cache)
    where = f" at {server.base_url}" if server else ""
    return (
        f"the {size} llama-server is still running{where} (stop it with `asyncfc model stop --size {size}`)"
    )
