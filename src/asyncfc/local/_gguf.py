"""Minimal GGUF metadata reader.

Only the key/value header is parsed, to read the chat template without adding the
`gguf` package (and numpy) as a dependency. Tensors are never touched.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from ..errors import LocalModelError

_MAGIC = b"GGUF"
# value type id -> struct format of a fixed-size scalar (little-endian)
_SCALARS: dict[int, str] = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_STRING = 8
_ARRAY = 9


class GGUFError(LocalModelError):
    """The file is not a GGUF we can read, or the key is absent."""


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise GGUFError("truncated GGUF header")
    return data


def _u32(f: BinaryIO) -> int:
    value: int = struct.unpack("<I", _read(f, 4))[0]
    return value


def _u64(f: BinaryIO) -> int:
    value: int = struct.unpack("<Q", _read(f, 8))[0]
    return value


def _string(f: BinaryIO) -> bytes:
    return _read(f, _u64(f))


def _skip(f: BinaryIO, vtype: int) -> None:
    """Skip one value without decoding it (token lists hold ~150k strings)."""
    if vtype in _SCALARS:
        f.seek(struct.calcsize(_SCALARS[vtype]), 1)
    elif vtype == _STRING:
        f.seek(_u64(f), 1)
    elif vtype == _ARRAY:
        etype, count = _u32(f), _u64(f)
        if etype in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[etype]) * count, 1)
        else:
            for _ in range(count):
                _skip(f, etype)
    else:
        raise GGUFError(f"unknown GGUF value type {vtype}")


def read_string(path: Path, key: str) -> str:
    """Return the string metadata value `key` of the GGUF file at `path`."""
    wanted = key.encode()
    with open(path, "rb") as f:
        if _read(f, 4) != _MAGIC:
            raise GGUFError(f"{path} is not a GGUF file")
        version = _u32(f)
        if version < 2:
            raise GGUFError(f"GGUF version {version} is not supported")
        _u64(f)  # tensor count
        for _ in range(_u64(f)):
            name = _string(f)
            vtype = _u32(f)
            if name == wanted:
                if vtype != _STRING:
                    raise GGUFError(f"GGUF key {key!r} is not a string (type {vtype})")
                return _string(f).decode("utf-8")
            _skip(f, vtype)
    raise GGUFError(f"GGUF key {key!r} not found in {path}")
