"""The output head on our side (runtime/head.py): logits of a few ids from llama.cpp's final hidden
states equal llama.cpp's own logits, and decoding with it gives the same spans as decoding on
llama.cpp's full-vocabulary logits."""
import numpy as np
import pytest

from biotag.export.gguf_llama import random_tiny_llama, tiny_vocab, write_llama_gguf
from biotag.export.quantize import quantize_gguf
from biotag.runtime.decoding import ConstrainedDecoder, tag_words_scored
from biotag.runtime.head import OutputHead, quantize_q8_0
from biotag.runtime.llm import LlamaBackend, gguf_data_end, llama_tokenize_fn, load_llama, read_gguf_header
from biotag.runtime.prompting import Task, TokenTable
from biotag.runtime.words import segment_words

SENTENCES = ["the patient had fever and cough after aspirin .",
             "mutations in the gene cause disease in mice and rats ."]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from biotag.runtime.codec import MARKER_TOKENS

    d = tmp_path_factory.mktemp("head")
    vocab = tiny_vocab(markers=len(MARKER_TOKENS))
    weights, hp = random_tiny_llama(seed=3, n_embd=64, n_layer=2, n_head=2, n_head_kv=1, n_ff=128,
                                    n_vocab=len(vocab["tokens"]))
    # larger output weights than the default std 0.02, so logits are spread and ties are rare
    weights["output.weight"] = weights["output.weight"] * 20
    src = write_llama_gguf(d / "f32.gguf", weights, hp, vocab)
    return {"f32": src, "q8_0": quantize_gguf(src, d / "q8_0.gguf", "q8_0")}


def _llama_vs_head(path):
    """(llama.cpp logits, head logits, plain float dot logits) at every position of a prompt."""
    llm = load_llama(path, n_ctx=256, n_threads=1)
    assert llm._biotag_head is not None
    ids = list(llm.tokenize(SENTENCES[0].encode(), add_bos=True))
    cand = list(range(min(300, llm.n_vocab())))
    q = {k: cand for k in range(len(ids))}
    full = LlamaBackend(llm, use_head=False)
    full.reset()
    ref = full.append(ids, q)
    head = LlamaBackend(llm)
    head.clear()
    got = head.append(ids, q)
    return llm, ids, np.stack([ref[k] for k in range(len(ids))]), np.stack([got[k] for k in range(len(ids))])


@pytest.mark.parametrize("quant", ["f32", "q8_0"])
def test_head_logits_equal_llama_logits(models, quant):
    _, _, ref, got = _llama_vs_head(models[quant])
    assert np.abs(ref - got).max() <= 1e-4 * np.abs(ref).max()
    assert (ref.argmax(1) == got.argmax(1)).all()


def test_q8_0_emulation_is_what_makes_the_match(models):
    """The plain float product with the dequantized rows is off by the activation quantization;
    the Q8_0 emulation is an order of magnitude closer to llama.cpp."""
    llm, ids, ref, got = _llama_vs_head(models["q8_0"])
    head = llm._biotag_head
    assert head._q8
    cap = llm._biotag_capture
    be = LlamaBackend(llm)
    be.clear()
    be.append(ids, {k: [0] for k in range(len(ids))})
    h = cap.hidden
    from gguf.quants import dequantize

    w = dequantize(np.asarray(head._data[: ref.shape[1]]), head.qtype).reshape(ref.shape[1], -1)
    plain = h @ w.T
    err_plain = np.abs(plain - ref).max()
    err_head = np.abs(got - ref).max()
    assert err_plain > 0
    assert err_head * 10 < err_plain


def test_quantize_q8_0_blocks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 64)).astype(np.float32)
    x[1, :32] = 0                       # an all-zero block quantizes to zeros with scale 0
    scale, q = quantize_q8_0(x)
    assert scale.shape == (3, 2) and q.shape == (3, 2, 32)
    assert scale[1, 0] == 0 and not q[1, 0].any()
    assert np.abs(q).max() == 127
    back = (q * scale[..., None]).reshape(3, 64)
    assert np.abs(back - x).max() <= scale.max() * 0.51 + 1e-6


@pytest.mark.parametrize("quant", ["f32", "q8_0"])
@pytest.mark.parametrize("fmt", ["S", "P"])
def test_decoding_with_head_equals_full_logits(models, quant, fmt):
    llm = load_llama(models[quant], n_ctx=512, n_threads=1)
    table = TokenTable(llama_tokenize_fn(llm), llm.token_bos())
    out = {}
    for use in (False, True):
        dec = ConstrainedDecoder(LlamaBackend(llm, use_head=use), table, speculative=True, marker_bias=2.0)
        out[use] = [tag_words_scored(dec, Task.for_corpus("bc5cdr", fmt), [w.text for w in segment_words(s)])
                    for s in SENTENCES]
    assert any(out[True])               # the random model does tag something
    for a, b in zip(out[False], out[True]):
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) < 1e-4


def test_head_off(models):
    assert load_llama(models["f32"], n_ctx=128, n_threads=1, head="llama")._biotag_head is None
    be = LlamaBackend(load_llama(models["f32"], n_ctx=128, n_threads=1))
    assert be.head is not None
    assert LlamaBackend(be.llm, use_head=False).head is None


def test_header_reader(models):
    hdr = read_gguf_header(models["q8_0"])
    assert hdr.meta["general.architecture"] == "llama"
    dims, _, _ = hdr.tensors["output.weight"]
    head = OutputHead(models["q8_0"])
    assert (head.n_embd, head.n_vocab) == dims
    assert gguf_data_end(models["q8_0"]) == models["q8_0"].stat().st_size


def test_head_refused_when_it_disagrees_with_llama(models, monkeypatch):
    """The load-time probe compares the head with llama.cpp's logits: a wrong head is not used."""
    real = OutputHead.logits

    def off_by_one(self, hidden, ids):
        return [row + 1.0 for row in real(self, hidden, ids)]

    monkeypatch.setattr(OutputHead, "logits", off_by_one)
    llm = load_llama(models["q8_0"], n_ctx=128, n_threads=1)
    assert llm._biotag_head is None
    assert LlamaBackend(llm).head is None
