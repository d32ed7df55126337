"""Quantize a GGUF with llama.cpp's own quantizer (through llama-cpp-python).

The source should be F32 or F16 (as ``biotag.export.gguf_llama`` writes it); llama.cpp refuses
to re-quantize an already quantized file unless asked to.  In Q4_K_M, tensors whose rows are
not a multiple of 256 fall back to other types (q5_0/q8_0), and some tensors (output, part of
attn_v/ffn_down) get Q6_K.  llama.cpp's log (every tensor, the fall-back warnings) is not shown:
``on_tensor(k, n)`` follows its progress, a failure names llama.cpp's last lines, and
BIOTAG_LLAMA_LOG=1 shows the whole log on stderr.
"""
from __future__ import annotations

import ctypes
import os
import re
from collections import deque
from pathlib import Path
from typing import Callable

from biotag.runtime.errors import ModelError

# llama_ftype values (llama.h)
FTYPES = {"f16": 1, "q8_0": 7, "q4_k_m": 15}


_TENSOR_LINE = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]")


def quantize_gguf(src, dst, quant: str, nthread: int = 2,
                  on_tensor: Callable[[int, int], None] | None = None) -> Path:
    """Quantize ``src`` into ``dst`` as "f16", "q8_0" or "q4_k_m"; ``dst`` appears only when complete.
    ``on_tensor(k, n)``: called as llama.cpp starts tensor k of n."""
    key = quant.lower()
    if key not in FTYPES:
        raise ValueError(f"unknown quantization {quant!r}; choose one of {sorted(FTYPES)}")
    from biotag.runtime.llm import check_gguf_file, native_log_listener, raise_if_interrupted

    src = check_gguf_file(src)
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[key]
    params.nthread = nthread
    tail: deque = deque(maxlen=3)

    def listen(text: str) -> None:
        if text.strip():
            tail.append(text.strip())
        m = _TENSOR_LINE.match(text)
        if m and on_tensor is not None:
            on_tensor(int(m.group(1)), int(m.group(2)))

    try:
        with native_log_listener(listen):
            rc = llama_cpp.llama_model_quantize(os.fsencode(src), os.fsencode(tmp), ctypes.byref(params))
        raise_if_interrupted()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        said = f"; llama.cpp: {' | '.join(tail)}" if tail else "; its message is on stderr"
        raise ModelError(f"{src}: llama.cpp could not quantize the model to {key} (return code {rc}); "
                         "the source must be an F32/F16 GGUF (not already quantized) of an architecture "
                         f"llama.cpp knows{said}")
    os.replace(tmp, dst)
    return dst
