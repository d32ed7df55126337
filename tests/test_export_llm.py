"""Export of the tagging LLM to GGUF (biotag.export.merge / biotag export llm), on a tiny random
Gemma 3 base (2 layers, n_embd 256, 4 heads of 64, 1 KV head, ff 512, a 357-token SentencePiece
vocabulary) that llama.cpp quantizes to Q4_K_M first, so the merge dequantizes real K-quants.

Parity: llama.cpp's logits of the merged F16 file against a PyTorch reference built from the same
tiny GGUF by transformers' GGUF loader with the adapter loaded through TaggerLM (peft)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("llama_cpp")

from biotag.export.gguf_llama import random_tiny_llama, tiny_vocab, write_llama_gguf  # noqa: E402
from biotag.export.merge import (export_llm, load_adapter, merge_lora_to_gguf,  # noqa: E402
                                 read_safetensors, write_lora_gguf)
from biotag.runtime.errors import ModelError  # noqa: E402

N_EMBD, N_LAYER, N_HEAD, HEAD_DIM, N_KV, N_FF = 256, 2, 4, 64, 1, 512
MARKERS = [5, 6, 300]
R, ALPHA = 8, 16
TEXT = (b" the patient had fever and cough with a drug dose and a gene mutation in the protein."
        b" the patients were treated with a dose of the drug, and the disease was a cancer of the gene.")


# --- tiny models and adapters -----------------------------------------------------------------
def tiny_gemma3_weights(seed: int = 0) -> dict:
    """Random Gemma 3 weights in GGUF layout (norms hold 1 + w, as llama.cpp's converter writes
    them). Embeddings are small and the post-norms large so that the layers, not the residual
    copy of the input token, decide the next token."""
    nv = len(tiny_vocab()["tokens"])
    rng = np.random.default_rng(seed)

    def mat(r, c, s=0.05):
        return (rng.standard_normal((r, c)) * s).astype(np.float32)

    def norm(n, g=1.0):
        return ((1.0 + 0.1 * rng.standard_normal(n)) * g).astype(np.float32)

    w = {"token_embd.weight": mat(nv, N_EMBD, 0.1)}
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(N_EMBD)
        w[p + "attn_q.weight"] = mat(N_HEAD * HEAD_DIM, N_EMBD)
        w[p + "attn_k.weight"] = mat(N_KV * HEAD_DIM, N_EMBD)
        w[p + "attn_v.weight"] = mat(N_KV * HEAD_DIM, N_EMBD)
        w[p + "attn_output.weight"] = mat(N_EMBD, N_HEAD * HEAD_DIM)
        w[p + "attn_q_norm.weight"] = norm(HEAD_DIM)
        w[p + "attn_k_norm.weight"] = norm(HEAD_DIM)
        w[p + "post_attention_norm.weight"] = norm(N_EMBD, 6.0)
        w[p + "ffn_norm.weight"] = norm(N_EMBD)
        w[p + "ffn_gate.weight"] = mat(N_FF, N_EMBD)
        w[p + "ffn_up.weight"] = mat(N_FF, N_EMBD)
        w[p + "ffn_down.weight"] = mat(N_EMBD, N_FF)
        w[p + "post_ffw_norm.weight"] = norm(N_EMBD, 6.0)
    w["output_norm.weight"] = norm(N_EMBD, 3.0)
    return w


def write_tiny_gemma3(path: Path, seed: int = 0, arch: str = "gemma3") -> Path:
    """F32 GGUF with the metadata llama.cpp's gemma3 loader reads (no output.weight: tied)."""
    v = tiny_vocab()
    g = gguf.GGUFWriter(str(path), arch)
    g.add_name("tiny gemma3")
    g.add_context_length(1024)
    g.add_embedding_length(N_EMBD)
    g.add_block_count(N_LAYER)
    g.add_feed_forward_length(N_FF)
    g.add_head_count(N_HEAD)
    g.add_head_count_kv(N_KV)
    g.add_key_length(HEAD_DIM)
    g.add_value_length(HEAD_DIM)
    g.add_layer_norm_rms_eps(1e-6)
    g.add_rope_freq_base(1e6)
    g.add_sliding_window(512)
    g.add_file_type(gguf.LlamaFileType.ALL_F32)
    g.add_tokenizer_model("llama")
    g.add_token_list(v["tokens"])
    g.add_token_scores(v["scores"])
    g.add_token_types(v["types"])
    g.add_bos_token_id(v["bos_id"])
    g.add_eos_token_id(v["eos_id"])
    g.add_unk_token_id(v["unk_id"])
    g.add_pad_token_id(0)
    g.add_add_bos_token(True)
    g.add_add_eos_token(False)
    for n, arr in tiny_gemma3_weights(seed).items():
        g.add_tensor(n, arr)
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()
    return path


def save_safetensors(tensors: dict, path: Path, dtype: str = "F32") -> None:
    """Minimal safetensors writer (numpy only), so the tests need no safetensors package."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        if dtype == "BF16":
            b = (a.view(np.uint32) >> 16).astype("<u2").tobytes()
        elif dtype == "F16":
            b = a.astype("<f2").tobytes()
        else:
            b = a.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def lora_shapes(n_embd=N_EMBD, n_q=N_HEAD * HEAD_DIM, n_kv=N_KV * HEAD_DIM, n_ff=N_FF):
    return {"q_proj": ("self_attn", n_q, n_embd), "k_proj": ("self_attn", n_kv, n_embd),
            "v_proj": ("self_attn", n_kv, n_embd), "o_proj": ("self_attn", n_embd, n_q),
            "gate_proj": ("mlp", n_ff, n_embd), "up_proj": ("mlp", n_ff, n_embd),
            "down_proj": ("mlp", n_embd, n_ff)}


def write_adapter(d: Path, marker_ids=MARKERS, r=R, alpha=ALPHA, seed=1, n_layer=N_LAYER,
                  shapes=None, n_embd=N_EMBD, std=0.05, dtype="F32") -> Path:
    """An adapter directory as save_artifacts writes it (peft key names, marker_emb rows in
    increasing token-id order, config.json with marker_ids and training_config.lora)."""
    shapes = shapes or lora_shapes()
    rng = np.random.default_rng(seed)
    sd = {}
    for i in range(n_layer):
        for proj, (mod, out, inn) in shapes.items():
            k = f"base_model.model.model.layers.{i}.{mod}.{proj}"
            sd[k + ".lora_A.weight"] = rng.standard_normal((r, inn)) * std
            sd[k + ".lora_B.weight"] = rng.standard_normal((out, r)) * std
    sd["marker_emb"] = rng.standard_normal((len(marker_ids), n_embd)) * 0.1
    d.mkdir(parents=True, exist_ok=True)
    save_safetensors(sd, d / "adapter.safetensors", dtype)
    units = ["\u27e6", "\u27e7"] + [f"\u27e6T{i}" for i in range(len(marker_ids) - 2)]
    cfg = {"marker_ids": dict(zip(units, marker_ids)),
           "training_config": {"lora": {"r": r, "alpha": alpha, "dropout": 0.05}}}
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def sha256(p) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def llama_logits(path, ids=None, lora_path=None):
    """llama.cpp logits (all positions x whole vocabulary) through the runtime's backend."""
    from biotag.runtime.llm import LlamaBackend, load_llama

    llm = load_llama(path, n_ctx=256, lora_path=lora_path)
    if ids is None:
        ids = list(llm.tokenize(TEXT, add_bos=True))
    be = LlamaBackend(llm)
    be.reset()
    out = be.append(ids, {k: range(llm.n_vocab()) for k in range(len(ids))})
    return np.stack([out[k] for k in range(len(ids))]), ids


def ids_with_markers():
    from biotag.runtime.llm import load_llama

    llm = load_llama(TINY["base"], vocab_only=True)
    ids = list(llm.tokenize(TEXT, add_bos=True))
    return ids[:5] + [MARKERS[0], MARKERS[2]] + ids[5:12] + [MARKERS[1]] + ids[12:] + [MARKERS[1]]


TINY: dict = {}


@pytest.fixture(scope="module", autouse=True)
def tiny(tmp_path_factory):
    from biotag.export.quantize import quantize_gguf

    d = tmp_path_factory.mktemp("export")
    f32 = write_tiny_gemma3(d / "tiny-f32.gguf")
    base = quantize_gguf(f32, d / "tiny-q4_k_m.gguf", "q4_k_m")
    adapter = write_adapter(d / "adapter")
    merged = merge_lora_to_gguf(base, adapter, d / "merged-f16.gguf", progress=False)
    TINY.update(dir=d, f32=f32, base=base, adapter=adapter, merged=merged)
    yield TINY


# --- tests ------------------------------------------------------------------------------------
def test_base_is_really_quantized():
    types = {t.tensor_type.name for t in gguf.GGUFReader(str(TINY["base"])).tensors}
    assert {"Q4_K", "Q6_K", "F32"} <= types


def test_merged_file_copies_metadata_and_types():
    rb, rm = gguf.GGUFReader(str(TINY["base"])), gguf.GGUFReader(str(TINY["merged"]))
    assert list(rb.fields) == list(rm.fields)
    for key, fb in rb.fields.items():
        fm = rm.fields[key]
        if key == "general.file_type":
            assert fm.contents() == gguf.LlamaFileType.MOSTLY_F16
            continue
        assert [int(t) for t in fb.types] == [int(t) for t in fm.types], key
        assert [bytes(fb.parts[i]) for i in fb.data] == [bytes(fm.parts[i]) for i in fm.data], key
    assert [t.name for t in rb.tensors] == [t.name for t in rm.tensors]
    assert "output.weight" not in {t.name for t in rm.tensors}   # tied, as in the real base
    for t in rm.tensors:
        assert t.tensor_type.name == ("F16" if len(t.shape) >= 2 else "F32"), t.name


def test_merged_weights_are_base_plus_lora_and_marker_rows():
    rb, rm = gguf.GGUFReader(str(TINY["base"])), gguf.GGUFReader(str(TINY["merged"]))
    tb = {t.name: t for t in rb.tensors}
    tm = {t.name: t for t in rm.tensors}
    ad = load_adapter(TINY["adapter"])

    def deq(t):
        return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)

    A, B = ad.pairs[(1, "attn_q")]
    want = deq(tb["blk.1.attn_q.weight"]) + ALPHA / R * (B.astype(np.float64) @ A)
    np.testing.assert_allclose(deq(tm["blk.1.attn_q.weight"]), want, atol=2e-3, rtol=1e-3)
    emb_b, emb_m = deq(tb["token_embd.weight"]), deq(tm["token_embd.weight"])
    np.testing.assert_allclose(emb_m[MARKERS], ad.marker_emb, atol=1e-3)
    others = np.setdiff1d(np.arange(emb_b.shape[0]), MARKERS)
    np.testing.assert_allclose(emb_m[others], emb_b[others], atol=1e-3)
    np.testing.assert_array_equal(deq(tm["blk.0.attn_norm.weight"]), deq(tb["blk.0.attn_norm.weight"]))


def test_merge_loads_decodes_and_changes_the_model():
    m, ids = llama_logits(TINY["merged"])
    b, _ = llama_logits(TINY["base"], ids)
    assert np.isfinite(m).all() and m.shape == (len(ids), len(tiny_vocab()["tokens"]))
    assert np.abs(m - b).max() > 1.0          # the LoRA does something
    from biotag.runtime.llm import load_llama

    llm = load_llama(TINY["merged"], n_ctx=128)
    out = llm(" the patient", max_tokens=6, temperature=0.0)
    assert out["usage"]["completion_tokens"] >= 1


def test_merge_is_deterministic(tmp_path):
    again = merge_lora_to_gguf(TINY["base"], TINY["adapter"], tmp_path / "again.gguf", progress=False)
    assert sha256(again) == sha256(TINY["merged"])
    assert sorted(os.listdir(tmp_path)) == ["again.gguf"]        # no temp file left behind


def tagger_logits(tagger, ids, n_vocab):
    """TaggerLM's logits over the first ``n_vocab`` tokens at every position of ``ids``."""
    import torch

    tagger.eval()
    with torch.no_grad():
        x = torch.tensor([ids])
        h = tagger.hidden(x, torch.ones_like(x))[0]
        cand = torch.arange(n_vocab)[None].expand(len(ids), -1)
        return tagger.cand_logits(h, cand).numpy()


def test_merged_logits_match_pytorch_reference():
    """llama.cpp F16 merged model vs transformers Gemma3 (fp32, from the same Q4_K_M file) with
    the adapter applied by peft through TaggerLM, marker tokens inside the sequence."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM

    from biotag.models.torch_tagger import TaggerLM

    ids = ids_with_markers()
    got, _ = llama_logits(TINY["merged"], ids)
    base = TINY["base"]
    # Gemma3TextConfig defaults query_pre_attn_scalar to 256; llama.cpp scales by 1/sqrt(head_dim)
    # (the same for the real 270M, whose head_dim is 256)
    hf = AutoModelForCausalLM.from_pretrained(base.parent, gguf_file=base.name, dtype=torch.float32,
                                              query_pre_attn_scalar=HEAD_DIM)
    tagger = TaggerLM(hf, MARKERS, lora_r=R, lora_alpha=ALPHA, lora_dropout=0.0)
    sd = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(TINY["adapter"] / "adapter.safetensors").items()}
    assert set(sd) == set(tagger.trainable_state())       # the adapter keys are peft's keys
    tagger.load_trainable_state(sd)
    ref = tagger_logits(tagger, ids, got.shape[1])
    top1 = float((ref.argmax(1) == got.argmax(1)).mean())
    maxdiff = float(np.abs(ref - got).max())
    print(f"\nparity over {len(ids)} positions x {got.shape[1]} tokens: top-1 agreement {top1:.3f}, "
          f"max |diff| {maxdiff:.4f} (logit std {ref.std():.2f})")
    assert len(ids) >= 36
    assert top1 >= 0.99
    assert maxdiff < 0.1


def test_layers_trained_in_full_merge_as_their_deltas_and_match_pytorch(tmp_path):
    """An adapter whose top layer was trained in full (``full.<layer>.<proj>`` deltas next to the
    LoRA weights): the merged file is base + LoRA + delta, and it computes what TaggerLM computes
    with the same adapter loaded."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM

    from biotag.models.torch_tagger import TaggerLM

    d = write_adapter(tmp_path / "full")
    sd = read_safetensors(d / "adapter.safetensors")
    rng = np.random.default_rng(5)
    for proj, (_, out, inn) in lora_shapes().items():
        sd[f"full.1.{proj}"] = rng.standard_normal((out, inn)) * 0.02
    save_safetensors(sd, d / "adapter.safetensors")
    ad = load_adapter(d)
    assert sorted(ad.full) == sorted((1, name) for name in ("attn_q", "attn_k", "attn_v", "attn_output",
                                                             "ffn_gate", "ffn_up", "ffn_down"))
    merged = merge_lora_to_gguf(TINY["base"], d, tmp_path / "merged.gguf", progress=False)
    tb = {t.name: t for t in gguf.GGUFReader(str(TINY["base"])).tensors}
    tm = {t.name: t for t in gguf.GGUFReader(str(merged)).tensors}

    def deq(t):
        return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)

    A, B = ad.pairs[(1, "ffn_up")]
    want = deq(tb["blk.1.ffn_up.weight"]) + ALPHA / R * (B.astype(np.float64) @ A) + sd["full.1.up_proj"]
    np.testing.assert_allclose(deq(tm["blk.1.ffn_up.weight"]), want, atol=2e-3, rtol=1e-3)
    A, B = ad.pairs[(0, "ffn_up")]                      # layer 0 has no delta
    want = deq(tb["blk.0.ffn_up.weight"]) + ALPHA / R * (B.astype(np.float64) @ A)
    np.testing.assert_allclose(deq(tm["blk.0.ffn_up.weight"]), want, atol=2e-3, rtol=1e-3)

    ids = ids_with_markers()
    got, _ = llama_logits(merged, ids)
    base = TINY["base"]
    hf = AutoModelForCausalLM.from_pretrained(base.parent, gguf_file=base.name, dtype=torch.float32,
                                              query_pre_attn_scalar=HEAD_DIM)
    tagger = TaggerLM(hf, MARKERS, lora_r=R, lora_alpha=ALPHA, lora_dropout=0.0)
    tagger.load_trainable_state({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()})
    ref = tagger_logits(tagger, ids, got.shape[1])
    without, _ = llama_logits(TINY["merged"], ids)       # the same LoRA, no delta
    assert float(np.abs(without - got).max()) > 0.1
    assert float((ref.argmax(1) == got.argmax(1)).mean()) >= 0.99
    assert float(np.abs(ref - got).max()) < 0.1
    with pytest.raises(ModelError, match="whole layers"):
        write_lora_gguf(d, TINY["base"], tmp_path / "lora.gguf")


def test_llama_architecture_merge_permutes_q_and_k(tmp_path):
    """Llama GGUFs store q/k rows permuted for llama.cpp's rotary layout: the LoRA delta must be
    permuted too.  Reference: transformers' Llama from the same GGUF (it un-permutes q/k), delta
    added in Hugging Face orientation, marker rows in both embedding and (untied) output."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM

    w, hp = random_tiny_llama(seed=3)
    base = write_llama_gguf(tmp_path / "llama.gguf", w, hp, tiny_vocab())
    n_q, n_kv = hp["n_embd"], hp["n_head_kv"] * hp["n_embd"] // hp["n_head"]
    adapter = write_adapter(tmp_path / "ad", shapes=lora_shapes(hp["n_embd"], n_q, n_kv, hp["n_ff"]),
                            n_layer=hp["n_layer"], std=0.1, seed=5)
    merged = merge_lora_to_gguf(base, adapter, tmp_path / "m.gguf", progress=False)
    _, ids = llama_logits(merged)
    ids = ids[:4] + [MARKERS[0], MARKERS[1]] + ids[4:]
    got, _ = llama_logits(merged, ids)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="llama.gguf", dtype=torch.float32)
    ad = load_adapter(adapter)
    sd = dict(hf.named_parameters())
    names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}
    with torch.no_grad():
        for (layer, g), (A, B) in ad.pairs.items():
            sd[f"model.layers.{layer}.{names[g]}.weight"] += torch.from_numpy(ad.scale * (B @ A))
        sd["model.embed_tokens.weight"][MARKERS] = torch.from_numpy(ad.marker_emb)
        sd["lm_head.weight"][MARKERS] = torch.from_numpy(ad.marker_emb)
        ref = hf(torch.tensor([ids])).logits[0].numpy()
    top1, maxdiff = float((ref.argmax(1) == got.argmax(1)).mean()), float(np.abs(ref - got).max())
    print(f"\nllama parity over {len(ids)} positions: top-1 {top1:.3f}, max |diff| {maxdiff:.4f} "
          f"(logit std {ref.std():.2f})")
    assert top1 >= 0.95
    assert maxdiff < 0.05 * max(1.0, float(np.abs(ref).max()))


@pytest.mark.parametrize("make_bad,what", [
    (lambda d: write_adapter(d, shapes=lora_shapes(n_embd=128), n_embd=128), "does not fit"),
    (lambda d: write_adapter(d, n_layer=3), "layers"),
    (lambda d: write_adapter(d, marker_ids=[5, 6, 4000]), "outside the vocabulary"),
    (lambda d: write_adapter(d, n_embd=128), "marker_emb"),
    (lambda d: write_adapter(d, r=4, alpha=8) and _set_rank(d, 8), "rank"),
    (lambda d: d.mkdir(), "adapter.safetensors missing"),
])
def test_wrong_adapter_gives_model_error_and_no_file(tmp_path, make_bad, what):
    ad = tmp_path / "ad"
    make_bad(ad)
    out = tmp_path / "out" / "m.gguf"
    with pytest.raises(ModelError, match=what):
        export_llm(TINY["base"], ad, out, "q8_0", progress=False)
    with pytest.raises(ModelError):
        write_lora_gguf(ad, TINY["base"], tmp_path / "lora.gguf")
    assert not out.exists() and not (tmp_path / "lora.gguf").exists()
    assert not out.parent.exists() or not os.listdir(out.parent)


def _set_rank(d: Path, r: int) -> bool:
    cfg = json.loads((d / "config.json").read_text())
    cfg["training_config"]["lora"]["r"] = r
    (d / "config.json").write_text(json.dumps(cfg))
    return True


def test_unsupported_architecture_and_bad_base(tmp_path):
    g = gguf.GGUFWriter(str(tmp_path / "gpt2.gguf"), "gpt2")
    g.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()
    with pytest.raises(ModelError, match="architecture 'gpt2'"):
        merge_lora_to_gguf(tmp_path / "gpt2.gguf", TINY["adapter"], tmp_path / "o.gguf", progress=False)
    (tmp_path / "junk.gguf").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a GGUF"):
        merge_lora_to_gguf(tmp_path / "junk.gguf", TINY["adapter"], tmp_path / "o.gguf", progress=False)
    assert not (tmp_path / "o.gguf").exists()


@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"])
def test_quantized_exports_load_and_decode(tmp_path, quant):
    out = export_llm(TINY["base"], TINY["adapter"], tmp_path / f"m-{quant}.gguf", quant, progress=False)
    assert sorted(os.listdir(tmp_path)) == [out.name]          # the F16 temp file is gone
    types = {t.tensor_type.name for t in gguf.GGUFReader(str(out)).tensors}
    assert ("Q8_0" if quant == "q8_0" else "Q4_K") in types
    ids = ids_with_markers()
    q, _ = llama_logits(out, ids)
    f16, _ = llama_logits(TINY["merged"], ids)
    agree = float((q.argmax(1) == f16.argmax(1)).mean())
    print(f"\n{quant}: top-1 agreement with F16 {agree:.3f}, max |diff| {np.abs(q - f16).max():.3f}")
    assert np.isfinite(q).all() and agree >= (0.8 if quant == "q8_0" else 0.6)
    assert out.stat().st_size < TINY["merged"].stat().st_size


def test_export_f16_is_the_merge(tmp_path):
    out = export_llm(TINY["base"], TINY["adapter"], tmp_path / "m.gguf", "f16", progress=False)
    assert sha256(out) == sha256(TINY["merged"])


def test_bf16_adapter_reads_like_f32(tmp_path):
    a32 = load_adapter(write_adapter(tmp_path / "f32"))
    a16 = load_adapter(write_adapter(tmp_path / "bf16", dtype="BF16"))
    for k, (A, B) in a32.pairs.items():
        np.testing.assert_allclose(a16.pairs[k][0], A, rtol=1e-2, atol=1e-4)
        np.testing.assert_allclose(a16.pairs[k][1], B, rtol=1e-2, atol=1e-4)
    assert a16.marker_ids == MARKERS and a16.scale == ALPHA / R


def test_lora_gguf_applies_the_projections_in_llama_cpp(tmp_path):
    """The LoRA file on the quantized base reproduces the merged model away from the marker
    tokens (their rows are not in a LoRA of a tied-embedding model)."""
    lora = write_lora_gguf(TINY["adapter"], TINY["base"], tmp_path / "lora.gguf")
    r = gguf.GGUFReader(str(lora))
    assert r.fields["general.type"].contents() == "adapter"
    assert r.fields["adapter.type"].contents() == "lora"
    assert r.fields["adapter.lora.alpha"].contents() == ALPHA
    assert r.fields["general.architecture"].contents() == "gemma3"
    names = {t.name for t in r.tensors}
    assert len(names) == 2 * 7 * N_LAYER and "blk.1.ffn_down.weight.lora_b" in names
    assert not any(n.startswith("token_embd") for n in names)
    lo, ids = llama_logits(TINY["base"], lora_path=lora)
    m, _ = llama_logits(TINY["merged"], ids)
    b, _ = llama_logits(TINY["base"], ids)
    keep = np.setdiff1d(np.arange(m.shape[1]), MARKERS)
    d_lora = np.abs(lo - m)[:, keep].max()
    d_base = np.abs(b - m)[:, keep].max()
    print(f"\nLoRA route vs merged: max |diff| {d_lora:.3f} (base vs merged {d_base:.3f})")
    assert float((lo[:, keep].argmax(1) == m[:, keep].argmax(1)).mean()) >= 0.9
    assert d_lora < d_base / 3


def test_cli_export_llm(tmp_path, capsys):
    from biotag.runtime.cli import main

    out, lora = tmp_path / "cli.gguf", tmp_path / "cli-lora.gguf"
    rc = main(["export", "llm", "--base", str(TINY["base"]), "--adapter", str(TINY["adapter"]),
               "--out", str(out), "--quant", "f16", "--lora-out", str(lora), "--quiet"])
    assert rc == 0 and sha256(out) == sha256(TINY["merged"]) and lora.is_file()
    assert "wrote" in capsys.readouterr().out
    bad = tmp_path / "bad"
    write_adapter(bad, n_layer=5)
    rc = main(["export", "llm", "--base", str(TINY["base"]), "--adapter", str(bad),
               "--out", str(tmp_path / "x.gguf"), "--quant", "q8_0", "--quiet"])
    assert rc == 3 and not (tmp_path / "x.gguf").exists()
    assert "wrong base model" in capsys.readouterr().err


def test_export_modules_import_without_torch():
    code = ("import sys, biotag.export.cli, biotag.export.merge; "
            "from biotag.runtime.cli import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bundle_format_comes_from_the_adapter(tmp_path):
    import json

    from biotag.export.bundle import adapter_format
    from biotag.runtime.errors import ModelError

    assert adapter_format(tmp_path) == "S"                       # no config: the historical default
    (tmp_path / "config.json").write_text(json.dumps({"training_config": {"format": "P"}}), encoding="utf-8")
    assert adapter_format(tmp_path) == "P"
    (tmp_path / "config.json").write_text(json.dumps({"training_config": {"format": "X"}}), encoding="utf-8")
    with pytest.raises(ModelError):
        adapter_format(tmp_path)
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError):
        adapter_format(tmp_path)


def test_task_bias_option_names_a_known_instruction_and_a_number():
    from biotag.export.cli import _task_bias
    from biotag.runtime.errors import InputError

    assert _task_bias(["bc2gm=0.5", "profile-en=2"]) == {"bc2gm": 0.5, "profile-en": 2.0}
    assert _task_bias(None) == {}
    for bad in ("bc2gmm=0.5", "bc2gm", "bc2gm=high"):
        with pytest.raises(InputError):
            _task_bias([bad])
