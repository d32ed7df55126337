"""A thin layer over llama-cpp-python: safe model loading, tokenization, and a decoding backend.

Safe loading: llama.cpp's CPU "extra buffer types" (AMX weight repacking) crash at the first
decode of Q8_0/Q4_K_M models on CPUs with AMX (see the project notes). biotag turns them off in
the model parameters, which works with any build of llama-cpp-python.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelError

_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_extra_bufts():
    import llama_cpp
    from llama_cpp import llama as llama_mod

    orig = llama_cpp.llama_cpp.llama_model_default_params

    def patched():
        p = orig()
        p.use_extra_bufts = False
        return p

    with _PATCH_LOCK:
        llama_mod.llama_cpp.llama_model_default_params = patched
        try:
            yield
        finally:
            llama_mod.llama_cpp.llama_model_default_params = orig


def gguf_data_end(path: str | os.PathLike) -> int:
    """Byte offset where the last tensor's data ends, read from the GGUF header alone (a streaming
    parse of the metadata and tensor table; ~100x faster than ``gguf.GGUFReader`` on a 262k-token
    vocabulary). Raises ValueError on a malformed header."""
    import mmap
    import struct

    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}   # GGUFValueType sizes
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size = len(m)

        def need(pos: int, n: int) -> None:
            if n < 0 or pos + n > size:
                raise ValueError("header runs past the end of the file")

        def u32(pos):
            need(pos, 4)
            return struct.unpack_from("<I", m, pos)[0], pos + 4

        def u64(pos):
            need(pos, 8)
            return struct.unpack_from("<Q", m, pos)[0], pos + 8

        def string(pos):
            n, pos = u64(pos)
            need(pos, n)
            return m[pos:pos + n], pos + n

        def skip_value(vtype, pos):
            if vtype in scalar:
                need(pos, scalar[vtype])
                return pos + scalar[vtype]
            if vtype == 8:                                   # string
                return string(pos)[1]
            if vtype == 9:                                   # array
                etype, pos = u32(pos)
                count, pos = u64(pos)
                if etype in scalar:
                    need(pos, count * scalar[etype])
                    return pos + count * scalar[etype]
                for _ in range(count):
                    pos = skip_value(etype, pos)
                return pos
            raise ValueError(f"unknown metadata value type {vtype}")

        if m[:4] != b"GGUF":
            raise ValueError("not a GGUF file")
        version, pos = u32(4)
        if version not in (2, 3):
            raise ValueError(f"unsupported GGUF version {version}")
        n_tensors, pos = u64(pos)
        n_kv, pos = u64(pos)
        alignment = 32
        for _ in range(n_kv):
            key, pos = string(pos)
            vtype, pos = u32(pos)
            if key == b"general.alignment" and vtype == 4:
                alignment, pos = u32(pos)
            else:
                pos = skip_value(vtype, pos)
        end = 0
        for _ in range(n_tensors):
            _, pos = string(pos)
            n_dims, pos = u32(pos)
            if n_dims > 8:
                raise ValueError("tensor with more than 8 dimensions")
            n_el = 1
            for _ in range(n_dims):
                d, pos = u64(pos)
                n_el *= d
            ttype, pos = u32(pos)
            offset, pos = u64(pos)
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
            end = max(end, offset + n_el // block * type_size)
        data_start = (pos + alignment - 1) // alignment * alignment
        return data_start + end


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


def load_llama(path: str | os.PathLike, n_ctx: int = 2048, n_threads: int | None = None,
               n_gpu_layers: int = 0, vocab_only: bool = False, n_batch: int = 512,
               lora_path: str | os.PathLike | None = None):
    """Load a GGUF with llama-cpp-python, AMX-safe, quiet, after checking the file.
    ``lora_path``: a llama.cpp LoRA GGUF (biotag.export.merge.write_lora_gguf) applied at scale 1."""
    import llama_cpp

    p = check_gguf_file(path)
    kwargs = dict(n_ctx=n_ctx, n_threads=n_threads or max(1, min(4, os.cpu_count() or 1)),
                  n_gpu_layers=n_gpu_layers, vocab_only=vocab_only, verbose=False, n_batch=n_batch,
                  n_ubatch=n_batch, logits_all=False)
    if lora_path is not None:
        kwargs["lora_path"] = str(check_gguf_file(lora_path))
    with _no_extra_bufts():
        try:
            return llama_cpp.Llama(str(p), **kwargs)
        except Exception as exc:
            raise ModelError(f"{p}: llama.cpp could not load the model ({exc})") from None


def llama_tokenize_fn(llm):
    """tokenize(text, special) -> ids (no BOS), as TokenTable expects."""

    def tok(text: str, special: bool) -> list[int]:
        if not text:
            return []
        return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    return tok


class LlamaBackend:
    """Decoding backend over one llama.cpp context (not thread-safe: one per process).

    Appends tokens with llama_decode, asks for logits only where the decoder needs them, keeps
    the KV cache of the longest common prefix with the previous sequence (prompt reuse), and
    rolls back rejected draft tokens with llama_memory_seq_rm."""

    def __init__(self, llm):
        import llama_cpp

        self.ll = llama_cpp
        self.llm = llm
        self.ctx = llm._ctx.ctx
        self.n_vocab = llm.n_vocab()
        self.n_ctx = llm.n_ctx()
        self.n_batch = llm.n_batch
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.seq: list[int] = []      # tokens in the KV cache
        self.pending: list[int] = []  # sequence the decoder has appended since reset
        self._reused = 0
        # the context may hold another backend's tokens: start from an empty KV cache
        llama_cpp.llama_memory_seq_rm(self.mem, 0, 0, -1)

    def __del__(self):
        try:
            self.ll.llama_batch_free(self.batch)
        except Exception:
            pass

    def reset(self) -> None:
        self.pending = []
        self._reused = -1

    def clear(self) -> None:
        """Forget the sequence and the whole KV cache (no prefix reuse on the next pass)."""
        self.ll.llama_memory_seq_rm(self.mem, 0, 0, -1)
        self.seq = []
        self.reset()

    def _truncate_cache(self, n: int) -> None:
        if n < len(self.seq):
            self.ll.llama_memory_seq_rm(self.mem, 0, n, -1)
            self.seq = self.seq[:n]

    def append(self, tokens: Sequence[int], queries: dict[int, Sequence[int]]) -> dict[int, np.ndarray]:
        tokens = list(tokens)
        start = len(self.pending)
        self.pending.extend(tokens)
        if len(self.pending) > self.n_ctx:
            raise ModelError(f"sequence of {len(self.pending)} tokens exceeds the context ({self.n_ctx})")
        # reuse the cached prefix the first time after a reset
        if self._reused < 0:
            common = 0
            for a, b in zip(self.seq, self.pending):
                if a != b:
                    break
                common += 1
            # the last token must be decoded again to get its logits
            common = min([common, len(self.pending) - 1] + [start + k for k in queries])
            self._truncate_cache(common)
            self._reused = common
        else:
            self._truncate_cache(start)
        first_new = len(self.seq)
        todo = self.pending[first_new:]
        want = {start + k: np.asarray(list(ids), dtype=np.int64) for k, ids in queries.items()}
        res: dict[int, np.ndarray] = {}
        pos = first_new
        while todo:
            chunk, todo = todo[: self.n_batch], todo[self.n_batch:]
            b = self.batch
            b.n_tokens = len(chunk)
            for k, t in enumerate(chunk):
                b.token[k] = t
                b.pos[k] = pos + k
                b.n_seq_id[k] = 1
                b.seq_id[k][0] = 0
                b.logits[k] = (pos + k) in want
            rc = self.ll.llama_decode(self.ctx, b)
            if rc != 0:
                raise ModelError(f"llama_decode failed ({rc})")
            for k in range(len(chunk)):
                if (pos + k) in want:
                    ptr = self.ll.llama_get_logits_ith(self.ctx, k)
                    row = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
                    res[pos + k - start] = row[want[pos + k]].astype(np.float32)
            self.seq.extend(chunk)
            pos += len(chunk)
        return res

    def rollback(self, n: int) -> None:
        if n <= 0:
            return
        self.pending = self.pending[:-n]
        self._truncate_cache(len(self.pending))
