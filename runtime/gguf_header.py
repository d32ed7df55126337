"""The GGUF header, read without llama.cpp: metadata, tensor table and where the tensor data ends
(to refuse a truncated or non-GGUF file before llama.cpp would crash on it). Used by the model
loader (runtime.llm) and the output head (runtime.head)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass
class GGUFHeader:
    data_start: int                                  # byte offset of the tensor data section
    tensors: dict[str, tuple[tuple[int, ...], int, int]]   # name -> (dims, ggml type, offset in data)
    meta: dict[str, object]                          # scalar and string metadata (arrays skipped)

    def data_end(self) -> int:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        end = 0
        for dims, ttype, offset in self.tensors.values():
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
            end = max(end, offset + math.prod(dims) // block * type_size)
        return self.data_start + end


def read_gguf_header(path: str | os.PathLike) -> GGUFHeader:
    """The GGUF header alone, by a streaming parse of the metadata and tensor table (~100x faster
    than ``gguf.GGUFReader`` on a 262k-token vocabulary, and without its per-token objects).
    Raises ValueError on a malformed header."""
    import mmap
    import struct

    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
              12: "<d"}   # GGUFValueType -> struct format
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size = len(m)

        def need(pos: int, n: int) -> None:
            if n < 0 or pos + n > size:
                raise ValueError("header runs past the end of the file")

        def unpack(fmt, pos):
            n = struct.calcsize(fmt)
            need(pos, n)
            return struct.unpack_from(fmt, m, pos)[0], pos + n

        def string(pos):
            n, pos = unpack("<Q", pos)
            need(pos, n)
            return m[pos:pos + n], pos + n

        def skip_value(vtype, pos):
            if vtype in scalar:
                n = struct.calcsize(scalar[vtype])
                need(pos, n)
                return pos + n
            if vtype == 8:                                   # string
                return string(pos)[1]
            if vtype == 9:                                   # array
                etype, pos = unpack("<I", pos)
                count, pos = unpack("<Q", pos)
                if etype in scalar:
                    n = count * struct.calcsize(scalar[etype])
                    need(pos, n)
                    return pos + n
                for _ in range(count):
                    pos = skip_value(etype, pos)
                return pos
            raise ValueError(f"unknown metadata value type {vtype}")

        if m[:4] != b"GGUF":
            raise ValueError("not a GGUF file")
        version, pos = unpack("<I", 4)
        if version not in (2, 3):
            raise ValueError(f"unsupported GGUF version {version}")
        n_tensors, pos = unpack("<Q", pos)
        n_kv, pos = unpack("<Q", pos)
        meta: dict[str, object] = {}
        for _ in range(n_kv):
            key, pos = string(pos)
            vtype, pos = unpack("<I", pos)
            name = key.decode("utf-8", "replace")
            if vtype in scalar:
                meta[name], pos = unpack(scalar[vtype], pos)
            elif vtype == 8:
                raw, pos = string(pos)
                meta[name] = raw.decode("utf-8", "replace")
            else:
                pos = skip_value(vtype, pos)
        tensors = {}
        for _ in range(n_tensors):
            name, pos = string(pos)
            n_dims, pos = unpack("<I", pos)
            if n_dims > 8:
                raise ValueError("tensor with more than 8 dimensions")
            dims = []
            for _ in range(n_dims):
                d, pos = unpack("<Q", pos)
                dims.append(d)
            ttype, pos = unpack("<I", pos)
            offset, pos = unpack("<Q", pos)
            tensors[name.decode("utf-8", "replace")] = (tuple(dims), ttype, offset)
        alignment = meta.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0:
            raise ValueError("bad general.alignment")
        return GGUFHeader((pos + alignment - 1) // alignment * alignment, tensors, meta)


def gguf_data_end(path: str | os.PathLike) -> int:
    """Byte offset where the last tensor's data ends, read from the GGUF header alone."""
    try:
        return read_gguf_header(path).data_end()
    except (KeyError, TypeError) as exc:  # unknown ggml type
        raise ValueError(f"unknown tensor type ({exc})") from None


def check_gguf_file(path: str | os.PathLike) -> Path:
    """Refuse what would crash llama.cpp: a missing, empty, truncated or non-GGUF file."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: model file not found")
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(4)
    if head != b"GGUF":
        raise ModelError(f"{p}: not a GGUF model file")
    try:
        end = gguf_data_end(p)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a damaged file
        raise ModelError(f"{p}: damaged GGUF file ({type(exc).__name__}: {exc})") from None
    if end > size:
        raise ModelError(f"{p}: truncated GGUF file ({size} bytes, tensors need {end})")
    return p
