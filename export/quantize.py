"""Quantize a GGUF with llama.cpp's own quantizer (through llama-cpp-python).

The source should be F32 or F16 (as ``biotag.export.gguf_llama`` writes it); llama.cpp refuses
to re-quantize an already quantized file unless asked to.  In Q4_K_M, tensors whose rows are
not a multiple of 256 fall back to other types (q5_0/q8_0), and some tensors (output, part of
attn_v/ffn_down) get Q6_K.  llama.cpp reports its progress on stderr.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

from biotag.runtime.errors import ModelError

# llama_ftype values (llama.h)
FTYPES = {"f16": 1, "q8_0": 7, "q4_k_m": 15}


def quantize_gguf(src, dst, quant: str, nthread: int = 2) -> Path:
    """Quantize ``src`` into ``dst`` as "f16", "q8_0" or "q4_k_m"; ``dst`` appears only when complete."""
    key = quant.lower()
    if key not in FTYPES:
        raise ValueError(f"unknown quantization {quant!r}; choose one of {sorted(FTYPES)}")
    from biotag.runtime.llm import check_gguf_file

    src = check_gguf_file(src)
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[key]
    params.nthread = nthread
    try:
        rc = llama_cpp.llama_model_quantize(os.fsencode(src), os.fsencode(tmp), ctypes.byref(params))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{src}: llama.cpp could not quantize the model to {key} (return code {rc}); "
                         "the source must be an F32/F16 GGUF (not already quantized) of an architecture "
                         "llama.cpp knows; its message is on stderr")
    os.replace(tmp, dst)
    return dst
