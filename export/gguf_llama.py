"""Write a Llama-architecture GGUF from numpy weights (no torch, no converter script).

Weight layout (numpy arrays, row-major, PyTorch ``nn.Linear`` orientation ``(out, in)``;
GGUF stores the reversed shape, which ``gguf.GGUFWriter`` does for us):

    token_embd.weight          (n_vocab, n_embd)
    blk.N.attn_norm.weight     (n_embd,)                     RMSNorm before attention
    blk.N.attn_q.weight        (n_head * head_dim, n_embd)   permuted, see ``permute_qk``
    blk.N.attn_k.weight        (n_head_kv * head_dim, n_embd) permuted, see ``permute_qk``
    blk.N.attn_v.weight        (n_head_kv * head_dim, n_embd)
    blk.N.attn_output.weight   (n_embd, n_head * head_dim)
    blk.N.ffn_norm.weight      (n_embd,)                     RMSNorm before the MLP
    blk.N.ffn_gate.weight      (n_ff, n_embd)                SwiGLU: down(silu(gate x) * up x)
    blk.N.ffn_up.weight        (n_ff, n_embd)
    blk.N.ffn_down.weight      (n_embd, n_ff)
    output_norm.weight         (n_embd,)
    output.weight              (n_vocab, n_embd)             optional: absent = tied to token_embd

with ``head_dim = n_embd // n_head``.  Hugging Face -> llama.cpp names:
``model.embed_tokens`` -> ``token_embd``, ``model.layers.N.self_attn.{q,k,v,o}_proj`` ->
``blk.N.attn_{q,k,v,output}``, ``input_layernorm`` -> ``attn_norm``, ``post_attention_layernorm``
-> ``ffn_norm``, ``mlp.{gate,up,down}_proj`` -> ``ffn_{gate,up,down}``, ``model.norm`` ->
``output_norm``, ``lm_head`` -> ``output``.

Rotary layout: Hugging Face Llama rotates the two *halves* of each head (``rotate_half``);
llama.cpp's Llama graph rotates *adjacent pairs*.  So q and k weights taken from a Hugging Face
checkpoint must go through ``permute_qk`` (q with ``n_head``, k with ``n_head_kv``) before they
are written here; weights from ``random_tiny_llama`` need nothing.

Norms and 1-D tensors are always written as F32; matrices as F32 (default) or F16.  llama.cpp's
quantizer (``biotag.export.quantize``) takes such a file as its source.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

LLAMA_TOKEN_TYPE_NORMAL = 1
LLAMA_TOKEN_TYPE_UNKNOWN = 2
LLAMA_TOKEN_TYPE_CONTROL = 3
LLAMA_TOKEN_TYPE_BYTE = 6

_LAYER_TENSORS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                  "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")


def permute_qk(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """Reorder the rows of a Hugging Face q or k projection into llama.cpp's rotary layout.

    Within each head, Hugging Face keeps the rotary pairs as (i, i + head_dim/2); llama.cpp
    wants them adjacent (2i, 2i + 1).  Each head's rows are seen as a (2, head_dim/2) grid and
    read out column by column.  The number of heads in ``w`` is ``n_head_kv`` when it is given
    (use it for k under grouped-query attention), otherwise ``n_head`` (use this for q).
    Works for a 1-D bias as well.
    """
    heads = n_head_kv if n_head_kv is not None else n_head
    rows = w.shape[0]
    if rows % (2 * heads):
        raise ValueError(f"{rows} rows cannot be split into {heads} heads of even size")
    half = rows // heads // 2
    return (w.reshape(heads, 2, half, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


def tiny_vocab(markers: int = 0) -> dict:
    """A small SentencePiece-style ("llama") vocabulary: specials, 256 byte tokens, word pieces.

    Returns ``{"tokens", "scores", "types", "bos_id", "eos_id", "unk_id", "add_bos", "add_eos"}``.
    Word pieces score by length (llama.cpp's SPM tokenizer merges the best-scoring pair first);
    the byte tokens are the fallback for anything else. ``markers`` appends that many control
    tokens ``<unused0>``... (biotag's tag markers, as in Gemma's vocabulary).
    """
    tokens = ["<unk>", "<s>", "</s>"]
    types = [LLAMA_TOKEN_TYPE_UNKNOWN, LLAMA_TOKEN_TYPE_CONTROL, LLAMA_TOKEN_TYPE_CONTROL]
    scores = [0.0, 0.0, 0.0]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(LLAMA_TOKEN_TYPE_BYTE)
        scores.append(0.0)
    # llama.cpp's SPM tokenizer builds a piece by merging adjacent pieces whose concatenation
    # is in the vocabulary, so every prefix of a word piece is in the vocabulary too.
    words = ["▁the", "▁a", "▁of", "▁and", "▁in", "▁with", "▁patient", "▁patients",
             "▁fever", "▁cough", "▁disease", "▁cancer", "▁gene", "▁protein", "▁mutation",
             "▁drug", "▁dose", "▁was", "▁were", "▁had", "▁has", "▁treated",
             "▁[", "▁]", "[", "]", "▁.", ".", ",", "Output", ":"]
    pieces: list[str] = []
    for w in words:
        for end in range(1, len(w) + 1):
            if w[:end] not in pieces:
                pieces.append(w[:end])
    for piece in pieces:
        tokens.append(piece)
        types.append(LLAMA_TOKEN_TYPE_NORMAL)
        scores.append(float(len(piece)))  # longer pieces win the merges
    for k in range(markers):
        tokens.append(f"<unused{k}>")
        types.append(LLAMA_TOKEN_TYPE_CONTROL)
        scores.append(0.0)
    return {"tokens": tokens, "scores": scores, "types": types,
            "bos_id": 1, "eos_id": 2, "unk_id": 0, "add_bos": True, "add_eos": False}


def random_tiny_llama(seed: int = 0, n_embd: int = 256, n_layer: int = 2, n_head: int = 4,
                      n_head_kv: int = 2, n_ff: int = 512, n_vocab: int | None = None):
    """Random small Llama weights (std 0.02, norms 1) in the layout above -> (weights, hparams)."""
    if n_vocab is None:
        n_vocab = len(tiny_vocab()["tokens"])
    if n_embd % n_head or n_head % n_head_kv:
        raise ValueError("n_embd must divide by n_head and n_head by n_head_kv")
    head_dim = n_embd // n_head
    rng = np.random.default_rng(seed)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    def ones():
        return np.ones(n_embd, dtype=np.float32)

    w = {"token_embd.weight": mat(n_vocab, n_embd)}
    for i in range(n_layer):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = ones()
        w[p + "attn_q.weight"] = mat(n_head * head_dim, n_embd)
        w[p + "attn_k.weight"] = mat(n_head_kv * head_dim, n_embd)
        w[p + "attn_v.weight"] = mat(n_head_kv * head_dim, n_embd)
        w[p + "attn_output.weight"] = mat(n_embd, n_head * head_dim)
        w[p + "ffn_norm.weight"] = ones()
        w[p + "ffn_gate.weight"] = mat(n_ff, n_embd)
        w[p + "ffn_up.weight"] = mat(n_ff, n_embd)
        w[p + "ffn_down.weight"] = mat(n_embd, n_ff)
    w["output_norm.weight"] = ones()
    w["output.weight"] = mat(n_vocab, n_embd)
    hparams = {"n_vocab": n_vocab, "n_embd": n_embd, "n_layer": n_layer, "n_head": n_head,
               "n_head_kv": n_head_kv, "n_ff": n_ff, "n_ctx": 2048, "rms_eps": 1e-5,
               "rope_theta": 10000.0}
    return w, hparams


def _check(weights: dict, hp: dict) -> None:
    n_embd, n_vocab, n_ff = hp["n_embd"], hp["n_vocab"], hp["n_ff"]
    head_dim = n_embd // hp["n_head"]
    q_rows, kv_rows = hp["n_head"] * head_dim, hp["n_head_kv"] * head_dim
    want = {"token_embd.weight": (n_vocab, n_embd), "output_norm.weight": (n_embd,)}
    if "output.weight" in weights:
        want["output.weight"] = (n_vocab, n_embd)
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        want.update({p + "attn_norm.weight": (n_embd,), p + "attn_q.weight": (q_rows, n_embd),
                     p + "attn_k.weight": (kv_rows, n_embd), p + "attn_v.weight": (kv_rows, n_embd),
                     p + "attn_output.weight": (n_embd, q_rows), p + "ffn_norm.weight": (n_embd,),
                     p + "ffn_gate.weight": (n_ff, n_embd), p + "ffn_up.weight": (n_ff, n_embd),
                     p + "ffn_down.weight": (n_embd, n_ff)})
    missing = sorted(set(want) - set(weights))
    extra = sorted(set(weights) - set(want))
    if missing or extra:
        raise ValueError(f"tensor names do not match the hparams: missing {missing}, unexpected {extra}")
    for name, shape in want.items():
        if tuple(weights[name].shape) != shape:
            raise ValueError(f"{name}: shape {tuple(weights[name].shape)}, expected {shape}")


def write_llama_gguf(path, weights: dict, hparams: dict, vocab: dict, dtype: str = "f32",
                     name: str = "biotag-llama") -> Path:
    """Write ``weights`` (layout in the module docstring) as a Llama GGUF at ``path``.

    ``hparams``: n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, and optionally n_ctx (2048),
    rms_eps (1e-5), rope_theta (10000).  ``vocab``: as returned by ``tiny_vocab``.
    ``dtype``: "f32" or "f16" for the matrices (1-D tensors stay F32).
    The file is written next to ``path`` under a temporary name and renamed when complete.
    """
    import gguf

    if dtype not in ("f32", "f16"):
        raise ValueError(f"dtype must be 'f32' or 'f16', not {dtype!r}")
    if len(vocab["tokens"]) != hparams["n_vocab"]:
        raise ValueError(f"vocabulary has {len(vocab['tokens'])} tokens, hparams say {hparams['n_vocab']}")
    _check(weights, hparams)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")

    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name(name)
    w.add_context_length(int(hparams.get("n_ctx", 2048)))
    w.add_embedding_length(hparams["n_embd"])
    w.add_block_count(hparams["n_layer"])
    w.add_feed_forward_length(hparams["n_ff"])
    w.add_head_count(hparams["n_head"])
    w.add_head_count_kv(hparams["n_head_kv"])
    w.add_rope_dimension_count(hparams["n_embd"] // hparams["n_head"])
    w.add_rope_freq_base(float(hparams.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(hparams.get("rms_eps", 1e-5)))
    w.add_vocab_size(hparams["n_vocab"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)

    w.add_tokenizer_model("llama")
    w.add_token_list(vocab["tokens"])
    w.add_token_scores([float(s) for s in vocab["scores"]])
    w.add_token_types([int(t) for t in vocab["types"]])
    w.add_bos_token_id(vocab["bos_id"])
    w.add_eos_token_id(vocab["eos_id"])
    w.add_unk_token_id(vocab["unk_id"])
    w.add_add_bos_token(bool(vocab.get("add_bos", True)))
    w.add_add_eos_token(bool(vocab.get("add_eos", False)))

    for tname, arr in weights.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if dtype == "f16" and arr.ndim == 2:
            arr = arr.astype(np.float16)
        w.add_tensor(tname, arr)

    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, path)
    except BaseException:
        w.close()
        tmp.unlink(missing_ok=True)
        raise
    return path
