"""The output head on our side: logits of a few token ids from llama.cpp's final hidden states.

The copy-constrained decoder only ever compares a handful of tokens (the next copy token and the
markers valid there), but llama.cpp's lm_head multiplies every output position by the whole
vocabulary: for Gemma 3 270M (262,144 x 640, tied embeddings) that is more arithmetic than the
18 transformer layers together. So on the CPU biotag stops the graph right after the final norm
(``result_norm``, through the scheduler's eval callback), reads the hidden states of the positions
it needs, and multiplies them by the rows of the output matrix it needs, read from the GGUF on
demand (memory-mapped, the same pages llama.cpp maps; nothing is dequantized up front).

For a Q8_0 output matrix (the Q4_K_M and Q8_0 bundles) the dot products are computed the way
ggml's CPU kernel computes them (activations quantized to Q8_0 blocks, integer block sums scaled
by both fp16 scales), so the scores match llama.cpp's own logits up to float summation order.
Other types are dequantized and multiplied in float32 (F16 activations for an F16 matrix).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelError

QK8_0 = 32


def quantize_q8_0(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ggml's quantize_row_q8_0 on rows of ``x`` (n, d): (scales (n, d/32) as fp16->fp32, int8 (n, d/32, 32))."""
    n, d = x.shape
    blocks = x.astype(np.float32).reshape(n, d // QK8_0, QK8_0)
    amax = np.abs(blocks).max(axis=2)
    scale = (amax / 127.0).astype(np.float32)
    inv = np.divide(np.float32(127.0), amax, out=np.zeros_like(amax), where=amax != 0)
    q = np.rint(blocks * inv[..., None]).astype(np.int8)
    return scale.astype(np.float16).astype(np.float32), q


class OutputHead:
    """Rows of a GGUF's output matrix and the logits they give for hidden states."""

    def __init__(self, gguf_path: str | os.PathLike):
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        from .gguf_header import read_gguf_header

        try:
            hdr = read_gguf_header(gguf_path)
        except ValueError as exc:
            raise ModelError(f"{gguf_path}: {exc}") from None
        t = hdr.tensors.get("output.weight") or hdr.tensors.get("token_embd.weight")
        if t is None or len(t[0]) != 2:
            raise ModelError(f"{gguf_path}: no output matrix (output.weight or token_embd.weight)")
        (self.n_embd, self.n_vocab), ttype, offset = t
        self.qtype = GGMLQuantizationType(ttype)
        block, type_size = GGML_QUANT_SIZES[self.qtype]
        row_bytes = self.n_embd // block * type_size
        self._data = np.memmap(gguf_path, dtype=np.uint8, mode="r", offset=hdr.data_start + offset,
                               shape=(self.n_vocab, row_bytes))   # rows read on demand
        self._q8 = self.qtype == GGMLQuantizationType.Q8_0
        self._f16 = self.qtype == GGMLQuantizationType.F16
        arch = hdr.meta.get("general.architecture", "")
        self.softcap = float(hdr.meta.get(f"{arch}.final_logit_softcapping") or 0.0)

    # logits -------------------------------------------------------------------------------
    def logits(self, hidden: np.ndarray, ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """For each row ``hidden[r]`` the logits of the token ids ``ids[r]``."""
        hidden = np.asarray(hidden, dtype=np.float32)
        flat = np.array([int(i) for row in ids for i in row], dtype=np.int64)
        if flat.size == 0:
            return [np.zeros(0, np.float32) for _ in ids]
        if flat.min() < 0 or flat.max() >= self.n_vocab:
            raise ModelError(f"token id out of range for the output matrix ({self.n_vocab})")
        rows_of = np.repeat(np.arange(len(ids)), [len(row) for row in ids])
        raw = np.asarray(self._data[flat])   # (pairs, row bytes), from the memory map
        if self._q8:   # block = fp16 scale + 32 int8
            blocks = raw.reshape(len(flat), -1, 2 + QK8_0)
            ws = np.ascontiguousarray(blocks[..., :2]).view(np.float16)[..., 0].astype(np.float32)
            wq = np.ascontiguousarray(blocks[..., 2:]).view(np.int8).astype(np.int32)
            xs, xq = quantize_q8_0(hidden)
            sumi = np.einsum("pbk,pbk->pb", xq[rows_of].astype(np.int32), wq)
            out = (sumi.astype(np.float32) * (xs[rows_of] * ws)).sum(axis=1, dtype=np.float32)
        else:
            from gguf.quants import dequantize

            w = dequantize(raw, self.qtype).reshape(len(flat), self.n_embd).astype(np.float32)
            x = hidden[rows_of]
            if self._f16:
                x = x.astype(np.float16).astype(np.float32)
            out = np.einsum("pd,pd->p", x, w)
        if self.softcap:
            out = np.tanh(out / self.softcap) * self.softcap
        return np.split(out.astype(np.float32), np.cumsum([len(row) for row in ids])[:-1])


class HiddenCapture:
    """An eval callback for llama.cpp's scheduler that copies ``result_norm`` (the final hidden
    states of the output positions) and stops the graph there, so the lm_head is never computed.

    Armed per decode; when disarmed it asks for nothing and the graph runs as usual."""

    NAME = b"result_norm"

    def __init__(self, n_embd: int):
        import llama_cpp

        lib = Path(llama_cpp.__file__).resolve().parent / "lib"
        base = next((p for p in (lib / "libggml-base.so", lib / "libggml-base.dylib", lib / "ggml-base.dll")
                     if p.exists()), None)
        if base is None:
            raise ModelError("llama-cpp-python: libggml-base not found next to libllama")
        g = ctypes.CDLL(str(base))
        g.ggml_get_name.restype = ctypes.c_char_p
        g.ggml_get_name.argtypes = [ctypes.c_void_p]
        g.ggml_nbytes.restype = ctypes.c_size_t
        g.ggml_nbytes.argtypes = [ctypes.c_void_p]
        g.ggml_backend_tensor_get.restype = None
        g.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
        self._g = g
        self.n_embd = n_embd
        self.armed = False
        self.interrupted = False   # a Ctrl-C arrived inside the callback (LlamaBackend re-raises it)
        self.hidden: np.ndarray | None = None
        self.callback = llama_cpp.ggml_backend_sched_eval_callback(self._cb)  # keep a reference

    def _cb(self, t, ask, _user):
        # nothing may escape into C: ctypes would print it and let the graph go on
        try:
            return self._eval(t, ask)
        except KeyboardInterrupt:
            self.interrupted = True
            return False   # stop the graph
        except BaseException:   # noqa: BLE001 - the decode then reports no hidden states
            return False

    def _eval(self, t, ask):
        if not self.armed:
            return False if ask else True
        is_ours = self._g.ggml_get_name(t) == self.NAME
        if ask:
            return is_ours
        if is_ours:
            nb = self._g.ggml_nbytes(t)
            buf = np.empty(nb // 4, dtype=np.float32)
            self._g.ggml_backend_tensor_get(t, buf.ctypes.data, 0, nb)
            self.hidden = buf.reshape(-1, self.n_embd)
            return False  # stop: the lm_head is not needed
        return True
