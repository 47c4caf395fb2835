"""Read a GGUF file's key/value metadata (no tensors) without llama.cpp or the ``gguf`` package.

Used to check that a model assembled from wheel parts is what it claims to be before llama.cpp
maps it: a truncated or corrupted part gives a clear error here instead of a crash there.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (little-endian, version 2/3).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

MAGIC = b"GGUF"

# value type id -> struct format (scalars); 8 = string, 9 = array
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

# llama.cpp's general.file_type values (enum llama_ftype) for the names people use.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
              17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


class GGUFError(ValueError):
    """The file is not a readable GGUF file."""


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise GGUFError("file ends inside the GGUF header (truncated)")
    return data


def _string(f: BinaryIO, limit: int) -> str:
    (n,) = struct.unpack("<Q", _read(f, 8))
    if n > limit:
        raise GGUFError(f"implausible string length {n} in the GGUF header (corrupted)")
    return _read(f, n).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int, limit: int, keep_arrays: bool):
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]
    if kind == 8:
        return _string(f, limit)
    if kind == 9:
        (item_kind,) = struct.unpack("<I", _read(f, 4))
        (count,) = struct.unpack("<Q", _read(f, 8))
        if count > 1 << 26:
            raise GGUFError(f"implausible array length {count} in the GGUF header (corrupted)")
        if not keep_arrays and item_kind in _SCALARS:
            f.seek(count * struct.calcsize(_SCALARS[item_kind]), os.SEEK_CUR)
            return f"<array of {count}>"
        items = [_value(f, item_kind, limit, keep_arrays) for _ in range(count)]
        return items if keep_arrays else f"<array of {count}>"
    raise GGUFError(f"unknown GGUF value type {kind} (corrupted header)")


def read_metadata(path: str | os.PathLike, *, keep_arrays: bool = False) -> dict:
    """The header's key/value pairs, plus ``"gguf.version"`` and ``"gguf.tensor_count"``.

    Arrays (the tokenizer's vocabulary) are summarised as ``"<array of N>"`` unless
    ``keep_arrays``. Raises :class:`GGUFError` for a file that is not GGUF or is cut short.
    """
    limit = 1 << 24
    with open(path, "rb") as f:
        if _read(f, 4) != MAGIC:
            raise GGUFError(f"{path} is not a GGUF file (no GGUF magic at the start)")
        version, tensors, count = struct.unpack("<IQQ", _read(f, 20))
        if version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {version}")
        meta: dict = {"gguf.version": version, "gguf.tensor_count": tensors}
        for _ in range(count):
            key = _string(f, 1 << 16)
            (kind,) = struct.unpack("<I", _read(f, 4))
            meta[key] = _value(f, kind, limit, keep_arrays)
    return meta


def describe(meta: dict) -> dict:
    """The fields a person checks: architecture, name, quantization, licence, chat template."""
    arch = meta.get("general.architecture")
    ftype = meta.get("general.file_type")
    return {
        "architecture": arch,
        "name": meta.get("general.name"),
        "basename": meta.get("general.basename"),
        "finetune": meta.get("general.finetune"),
        "size_label": meta.get("general.size_label"),
        "license": meta.get("general.license"),
        "quantization": FILE_TYPES.get(ftype, ftype),
        "context_length": meta.get(f"{arch}.context_length"),
        "chat_template": meta.get("tokenizer.chat_template"),
    }
