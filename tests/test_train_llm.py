"""Training side of the tagging LLM: example builder, sequences == what the decoder feeds, a tiny
randomly initialised Gemma-3-shaped model whose loss goes down, and exact resume."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from biotag.models.llm_data import Example, build_gazetteer, dictionary_examples, example_sequences
from biotag.runtime.codec import FORMAT_P, FORMAT_S, Span
from biotag.runtime.decoding import ConstrainedDecoder, tag_words
from biotag.runtime.prompting import Task, TokenTable

from test_decoding import fake_tokenize

TABLE = TokenTable(fake_tokenize, bos_id=2)


class TeacherBackend:
    """Scores the choice recorded in a training sequence highest: the decoder must then feed
    exactly the training ids and find exactly the gold spans."""

    def __init__(self, seqs):
        self.by_prompt = {}
        for s in seqs:
            self.by_prompt[tuple(s.ids[: s.positions[0] + 1])] = s
        self.seq, self.fed = [], []

    def reset(self):
        self.seq = []

    def append(self, tokens, queries):
        start = len(self.seq)
        self.seq.extend(tokens)
        self.fed.append(list(self.seq))
        seq = next(s for p, s in self.by_prompt.items() if tuple(self.seq[: len(p)]) == p)
        out = {}
        for k, ids in queries.items():
            pos = start + k
            nxt = seq.ids[pos + 1] if pos + 1 < len(seq.ids) else -1
            out[k] = np.array([1.0 if c == nxt else 0.0 for c in ids])
        return out

    def rollback(self, n):
        if n:
            del self.seq[-n:]


spans_st = st.lists(st.tuples(st.integers(0, 9), st.integers(1, 4), st.sampled_from(["Chemical", "Disease"])),
                    max_size=6)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(["the", "aspirin", "induced", "asthma", "腹", "痛", "-", "["]),
                min_size=1, max_size=10), spans_st, st.sampled_from([FORMAT_S, FORMAT_P]),
       st.booleans())
def test_training_sequences_are_what_the_decoder_feeds(words, raw, fmt, spec):
    n = len(words)
    spans = {Span(a, min(n, a + L), t) for a, L, t in raw if a < n}
    # keep a well-nested set (what the codec can carry)
    from biotag.runtime.codec import encodable
    kept = set(encodable(spans, FORMAT_S)[0])
    task = Task("bc5cdr", ("Chemical", "Disease"), fmt)
    ex = Example(task, words, sorted(kept))
    seqs = example_sequences(TABLE, ex)
    assert len(seqs) == (1 if fmt == FORMAT_S else 2)
    for s in seqs:
        assert len(s.positions) == len(s.candidates) == len(s.gold)
        assert all(0 <= g < len(c) and s.ids[p + 1] == c[g] for p, c, g in zip(s.positions, s.candidates, s.gold))
    be = TeacherBackend(seqs)
    # the adjacency guard is off here: random spans may have longer runs than bc5cdr's training data
    got = tag_words(ConstrainedDecoder(be, TABLE, speculative=spec, adjacency_guard=False), task, words)
    assert set(got) == kept
    from biotag.runtime.decoding import guard_would_stop
    from biotag.runtime.prompting import max_adjacent_run
    if fmt == FORMAT_S and not guard_would_stop(sorted(kept), max_adjacent_run("bc5cdr")):
        guarded = tag_words(ConstrainedDecoder(TeacherBackend(seqs), TABLE, speculative=spec), task, words)
        assert set(guarded) == kept
    # the last full sequence fed for each pass is a prefix of the training ids (closers at the end
    # are forced and never fed)
    for s in seqs:
        assert any(f == s.ids[: len(f)] and len(f) >= s.positions[-1] + 1 for f in be.fed)


def test_spans_nested_deeper_than_the_decoder_allows_are_not_supervised():
    from biotag.models.llm_data import within_depth
    from biotag.runtime.codec import MAX_DEPTH

    words = ["w"] * 20
    # a trial criterion's list of diseases, each one inside the one before it: MAX_DEPTH + 2 levels
    chain = [Span(i, 20, "Disease") for i in range(MAX_DEPTH + 2)]
    side = [Span(0, 1, "Chemical")]            # at depth 2, inside chain[0] and chain[1]
    ex = Example(Task("bc5cdr", ("Chemical", "Disease"), FORMAT_S), words, sorted(chain + side))
    kept = within_depth(ex.spans)
    assert kept == sorted(chain[:MAX_DEPTH] + side)
    assert within_depth(kept) == kept                      # spans within the depth are all kept
    seqs = example_sequences(TABLE, ex)                    # no gold choice the decoder cannot offer
    assert all(0 <= g < len(c) for s in seqs for c, g in zip(s.candidates, s.gold))
    got = tag_words(ConstrainedDecoder(TeacherBackend(seqs), TABLE, adjacency_guard=False), ex.task, words)
    assert set(got) == set(kept)


def test_dictionary_examples_tag_every_entry():
    exs = [Example(Task.for_corpus("bc5cdr"), "aspirin induced asthma".split(),
                   [Span(0, 1, "Chemical"), Span(2, 3, "Disease")]),
           Example(Task.for_corpus("cmeee"), list("腹痛"), [Span(0, 2, "Symptom")])]
    gaz = build_gazetteer(exs)
    assert gaz == {"aspirin": {"Chemical": 1}, "asthma": {"Disease": 1}, "腹痛": {"Symptom": 1}}
    d = dictionary_examples(gaz, {"en": ["Chemical", "Disease"], "zh": ["Symptom"]}, 6, per_example=2)
    assert len(d) == 6
    for ex in d:
        assert ex.task.fmt == "S"
        assert all(" ".join(ex.words[s.start:s.end]) in gaz or "".join(ex.words[s.start:s.end]) in gaz
                   for s in ex.spans)
    # a format-P run gets format-P dictionary examples (one pass per type, like its corpus examples)
    p = dictionary_examples(gaz, {"en": ["Chemical", "Disease"], "zh": ["Symptom"]}, 3, per_example=2, fmt="P")
    assert {ex.task.fmt for ex in p} == {"P"}
    assert [ex.spans for ex in p] == [ex.spans for ex in d[:3]]



@pytest.mark.parametrize("langs", [{"en": ["Chemical", "Disease"], "zh": []},
                                   {"en": [], "zh": ["Symptom"]}])
def test_dictionary_examples_of_a_one_language_mixture(langs):
    """An English-only (or Chinese-only) run: every dictionary example is in the language it has,
    its task lists the types of its spans, and its training sequences can be built."""
    exs = [Example(Task.for_corpus("bc5cdr"), "aspirin induced asthma".split(),
                   [Span(0, 1, "Chemical"), Span(2, 3, "Disease")]),
           Example(Task.for_corpus("cmeee"), list("腹痛"), [Span(0, 2, "Symptom")])]
    d = dictionary_examples(build_gazetteer(exs), langs, 6, per_example=2)
    assert len(d) == 6
    for ex in d:
        assert ex.spans and {s.type for s in ex.spans} <= set(ex.task.types)
        assert example_sequences(TABLE, ex)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")


def tiny_model(seed=0, lora_r=4, lora_alpha=8, **config):
    """A randomly initialised Gemma-3-shaped TaggerLM; ``config`` overrides its Gemma3TextConfig."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from biotag.models.torch_tagger import TaggerLM

    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(**{"vocab_size": 52000, "hidden_size": 64, "intermediate_size": 128,
                              "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                              "head_dim": 32, "max_position_embeddings": 512, "sliding_window": 64, **config})
    base = Gemma3ForCausalLM(cfg)
    for p in base.parameters():
        p.requires_grad_(False)
    return TaggerLM(base, sorted(TABLE.marker_ids.values()), lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0)


def make_batch():
    from biotag.models.torch_tagger import collate

    task = Task.for_corpus("bc5cdr")
    exs = [Example(task, "aspirin induced asthma in a patient".split(), [Span(0, 1, "Chemical"), Span(2, 3, "Disease")]),
           Example(task, "cisplatin toxicity".split(), [Span(0, 1, "Chemical")])]
    return collate([s for e in exs for s in example_sequences(TABLE, e)])


def train_steps(model, opt, batch, n):
    for _ in range(n):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("rank,alpha", [(8, 16), (8, 8), (4, 4)])
def test_an_adapter_widened_to_a_larger_rank_computes_the_same_loss_and_trains(tmp_path, rank, alpha):
    from safetensors.torch import save_file

    from biotag.models import train_llm as T

    torch.set_num_threads(1)
    small = tiny_model(seed=1)
    with torch.no_grad():                                    # a trained adapter: B is not 0
        for n, p in small.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    batch = make_batch()
    want = small.loss(batch)[0].item()
    sd = {k: v.contiguous() for k, v in small.trainable_state().items()}
    save_file(sd, str(tmp_path / "adapter.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"marker_ids": TABLE.marker_ids,
                                                       "training_config": {"lora": {"r": 4, "alpha": 8}}}))
    wide = tiny_model(seed=1, lora_r=rank, lora_alpha=alpha)
    T.load_adapter_into(wide, TABLE, tmp_path)
    assert wide.loss(batch)[0].item() == pytest.approx(want, rel=1e-5)
    if rank == 4:                                            # same rank, other alpha: rescaled only
        return
    a = dict(wide.named_parameters())
    name = next(n for n in a if "lora_A" in n)
    assert a[name].shape[0] == 8 and a[name][4:].abs().sum() > 0   # the added rank can learn
    train_steps(wide, torch.optim.AdamW([p for p in wide.parameters() if p.requires_grad], lr=5e-3), batch, 3)
    b = next(p for n, p in wide.named_parameters() if "lora_B" in n)
    assert b[:, 4:].abs().sum() > 0
    narrow = tiny_model(seed=1, lora_r=2, lora_alpha=4)
    with pytest.raises(SystemExit, match="rank 4"):
        T.load_adapter_into(narrow, TABLE, tmp_path)


def test_top_layers_trained_in_full_travel_as_deltas():
    from biotag.models import train_llm as T

    torch.set_num_threads(1)
    model = tiny_model(seed=2)
    names = model.unfreeze_top(1)
    assert len(names) == 7 and all(n.startswith("full.1.") for n in names)
    cfg = T.TrainConfig.from_dict({"name": "u", "datasets": {}, "steps": 3, "lr": 1e-3,
                                   "unfreeze": {"layers": 1, "lr": 2e-3}})
    opt = T.make_optimizer(cfg, model)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-3, 2e-3]
    assert len(opt.param_groups[2]["params"]) == 7
    layer0 = model.projection(0, "up_proj").weight.detach().clone()
    batch = make_batch()
    train_steps(model, opt, batch, 3)
    assert torch.equal(model.projection(0, "up_proj").weight, layer0)      # layer 0 stays frozen
    sd = model.trainable_state()
    assert sd["full.1.down_proj"].abs().max() > 0 and not any(k.startswith("full.0.") for k in sd)
    want = model.loss(batch)[0].item()
    plain = tiny_model(seed=2)                   # the deltas added to a frozen model (export, eval)
    plain.load_trainable_state(sd)
    assert plain.loss(batch)[0].item() == pytest.approx(want, rel=1e-5)
    again = tiny_model(seed=2)                   # a resumed run: master weights = start + delta
    again.unfreeze_top(1)
    again.load_trainable_state(sd)
    assert again.loss(batch)[0].item() == pytest.approx(want, rel=1e-5)
    assert torch.allclose(again.projection(1, "q_proj").weight, model.projection(1, "q_proj").weight)
    for bad in ({"layers": -1}, {"layers": 1, "lr": 0}, {"layer": 1}):
        with pytest.raises(SystemExit, match="unfreeze"):
            T.TrainConfig.from_dict({"name": "u", "datasets": {}, "steps": 3, "lr": 1e-3, "unfreeze": bad})


def test_a_few_steps_lower_the_loss():
    torch.set_num_threads(1)
    model = tiny_model()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    batch = make_batch()
    losses = []
    for _ in range(15):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_resume_gives_the_same_next_loss(tmp_path):
    torch.set_num_threads(1)
    batch = make_batch()

    def run(model, opt, n):
        out = []
        for _ in range(n):
            loss, _ = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    m1 = tiny_model()
    o1 = torch.optim.AdamW([p for p in m1.parameters() if p.requires_grad], lr=3e-3)
    run(m1, o1, 3)
    torch.save({"trainable": m1.trainable_state(), "opt": o1.state_dict()}, tmp_path / "ckpt.pt")
    expected = run(m1, o1, 2)

    m2 = tiny_model(seed=99)  # different init: everything must come from the checkpoint
    o2 = torch.optim.AdamW([p for p in m2.parameters() if p.requires_grad], lr=3e-3)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    m2.load_trainable_state(state["trainable"])
    o2.load_state_dict(state["opt"])
    # the frozen base must match too: same seed for the base weights
    m2b = tiny_model()
    m2b.load_trainable_state(state["trainable"])
    o2b = torch.optim.AdamW([p for p in m2b.parameters() if p.requires_grad], lr=3e-3)
    o2b.load_state_dict(state["opt"])
    assert run(m2b, o2b, 2) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_batches_are_a_pure_function_of_seed_and_step():
    from biotag.models.train_llm import batch_at

    task = Task.for_corpus("ncbi-disease")
    mix = {"ncbi-disease": [Example(task, f"case {i} of colon cancer".split(), [Span(3, 5, "Disease")])
                            for i in range(30)]}
    cfg = {"seed": 5, "batch_size": 4, "datasets": {"ncbi-disease": {}}}
    a = batch_at(cfg, 7, 0, mix, TABLE, 256)
    b = batch_at(cfg, 7, 0, mix, TABLE, 256)
    c = batch_at(cfg, 8, 0, mix, TABLE, 256)
    assert [s.ids for s in a] == [s.ids for s in b]
    assert [s.ids for s in a] != [s.ids for s in c]


def test_a_corpus_kept_out_of_the_profile_leaves_the_other_examples_as_they_were():
    from biotag.models.train_llm import batch_at

    ncbi, anat = Task.for_corpus("ncbi-disease"), Task.for_corpus("anatem")
    mix = {"ncbi-disease": [Example(ncbi, f"case {i} of colon cancer".split(), [Span(3, 5, "Disease")])
                            for i in range(30)],
           "anatem": [Example(anat, f"tumour {i} of the colon".split(), [Span(0, 1, "Anatomy")])
                      for i in range(30)]}
    base = {"seed": 5, "batch_size": 16, "profile": {"share": 0.5}}
    both = dict(base, datasets={"ncbi-disease": {}, "anatem": {}})
    out = dict(base, datasets={"ncbi-disease": {}, "anatem": {"profile": False}})
    from biotag.models.llm_data import profile_example

    anat_profile = {tuple(q.ids) for ex in mix["anatem"]
                    for q in example_sequences(TABLE, profile_example(ex, "profile-en"))}
    a = [tuple(s.ids) for m in range(4) for s in batch_at(both, 3, m, mix, TABLE, 256)]
    b = [tuple(s.ids) for m in range(4) for s in batch_at(out, 3, m, mix, TABLE, 256)]
    assert any(x in anat_profile for x in a)          # anatem asked under the profile
    assert not any(y in anat_profile for y in b)      # ... and not when kept out
    # every other example is the same sequence in the same place
    assert all(x == y for x, y in zip(a, b) if x not in anat_profile)
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == sum(x in anat_profile for x in a)


def _shared_data():
    from biotag.runtime.corpora import default_data_dir

    return default_data_dir()


@pytest.mark.data
@pytest.mark.skipif(not (_shared_data() / "ncbi-disease").is_dir(), reason="needs ../shared/data/ncbi-disease")
def test_ablation_table_scores_rows_against_the_baseline(tmp_path):
    import json

    from biotag.models.model_card import ablation_section
    from biotag.runtime.corpora import load
    from biotag.runtime.selector_eval import gold_docs

    ids = [d.id for d in load("ncbi-disease", "dev")[:40]]
    gold = gold_docs("ncbi-disease", "dev", ids)
    rows = {"s-full": gold, "s-nodict": [d if i % 2 else d.copy([]) for i, d in enumerate(gold)]}
    for row, docs in rows.items():
        (tmp_path / row / "artifact").mkdir(parents=True)
        (tmp_path / row / "artifact" / "config.json").write_text(json.dumps({"steps": 100, "wall_s": 600}))
        (tmp_path / row / "pred").mkdir()
        (tmp_path / row / "pred" / "ncbi-disease.dev.jsonl").write_text(
            "".join(json.dumps(d.to_json()) + "\n" for d in docs), encoding="utf-8")
    lines = ablation_section(tmp_path, corpora=("ncbi-disease",), rounds=200)
    base = next(x for x in lines if x.startswith("| s-full"))
    nodict = next(x for x in lines if x.startswith("| s-nodict"))
    assert "| 100.00 |" in base and "100 steps (10 min)" in base
    f1 = float(nodict.split("|")[4].split("(")[0])
    assert f1 < 100.0 and f"({f1 - 100:+.2f} [" in nodict
    assert not any(x.startswith("| p-full") for x in lines)  # rows without a run are left out


@pytest.mark.data
@pytest.mark.skipif(not (_shared_data() / "ncbi-disease").is_dir(), reason="needs ../shared/data/ncbi-disease")
def test_ablation_table_against_a_baseline_whose_predictions_were_lost(tmp_path):
    """Only the baseline's eval JSON is left: rows with predictions show their difference from its F1
    and their own bootstrap interval; a row with a score only shows the difference."""
    import json

    from biotag.models.model_card import ablation_section
    from biotag.runtime.corpora import load
    from biotag.runtime.selector_eval import gold_docs

    ids = [d.id for d in load("ncbi-disease", "dev")[:40]]
    gold = gold_docs("ncbi-disease", "dev", ids)
    half = [d if i % 2 else d.copy([]) for i, d in enumerate(gold)]
    for row in ("s-full", "p-full", "s-nodict"):
        (tmp_path / row / "artifact").mkdir(parents=True)
        (tmp_path / row / "artifact" / "config.json").write_text(json.dumps({"steps": 300, "wall_s": 3600}))
    (tmp_path / "s-full-dev-ncbi-disease.json").write_text(json.dumps([{"micro": {"f1": 80.0}, "run": {"documents": 40}}]))
    (tmp_path / "p-full-dev-ncbi-disease.json").write_text(json.dumps([{"micro": {"f1": 12.5}}]))
    (tmp_path / "s-nodict" / "pred").mkdir()
    (tmp_path / "s-nodict" / "pred" / "ncbi-disease.dev.jsonl").write_text(
        "".join(json.dumps(d.to_json()) + "\n" for d in half), encoding="utf-8")
    lines = ablation_section(tmp_path, corpora=("ncbi-disease",), rounds=200)
    cells = {x.split("|")[1].strip(): x.split("|")[4].strip() for x in lines if x.startswith("| ")}
    assert cells["s-full"] == "80.00"
    assert cells["p-full"] == "12.50 (-67.50)"
    f1 = float(cells["s-nodict"].split()[0])
    assert 0 < f1 < 100 and cells["s-nodict"].startswith(f"{f1:.2f} ({f1 - 80:+.2f}; own [")
    lo, hi = (float(x) for x in cells["s-nodict"].split("own [")[1].rstrip("])").split(", "))
    assert lo <= f1 <= hi and lo < hi
    assert "predictions were not kept" in "\n".join(lines) and "ncbi-disease 40" in "\n".join(lines)


def test_complete_split_table_pairs_guarded_and_unguarded_runs(tmp_path):
    from biotag.models.model_card import complete_section

    def res(f1, guard=None, **run):
        r = {"micro": {"precision": f1, "recall": f1, "f1": f1},
             "run": {"documents": 10, "wall_s": 1.0, **run}}
        if guard is not None:
            r["run"]["adjacency_guard"] = guard
        return [r]

    (tmp_path / "noguard").mkdir()
    (tmp_path / "testfull-bc5cdr.json").write_text(json.dumps(res(74.5, True, reused_documents=8)))
    (tmp_path / "noguard" / "testfull-bc5cdr.json").write_text(json.dumps(res(74.0)))
    (tmp_path / "testfull-genia.json").write_text(json.dumps(res(57.3)))   # before the guard existed
    lines = complete_section(tmp_path)
    row = {ln.split(" | ")[0][2:]: ln for ln in lines if ln.startswith("| ") and "---" not in ln}
    assert "**74.50** | 74.00 (+0.50)" in row["bc5cdr"] and "8 documents copied" in row["bc5cdr"]
    assert "| – | – | – | 57.30" in row["genia"]
    assert "ncbi-disease" not in row


def _cfg(**kw):
    from biotag.models.train_llm import TrainConfig

    base = {"name": "t", "datasets": {"bc5cdr": {}}, "steps": 10, "lr": 1e-3}
    return TrainConfig.from_dict({**base, **kw})


def test_lora_in_the_input_dtype_keeps_fp32_weights_and_the_loss():
    from biotag.models.torch_tagger import InputDtypeLinear, lora_in_input_dtype

    torch.set_num_threads(1)
    batch = make_batch()
    losses, grads = {}, {}
    for mode in ("fp32", "input"):
        model = tiny_model()
        model.peft.to(torch.bfloat16)                  # a bf16 base, fp32 trainable weights
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.float()
        with torch.no_grad():                          # LoRA B starts at zero: give it a value
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(n)))
        if mode == "input":
            assert lora_in_input_dtype(model.peft) == 2 * 7
            assert any(isinstance(m, InputDtypeLinear) for m in model.modules())
        loss, _ = model.loss(batch)
        loss.backward()
        losses[mode] = loss.item()
        grads[mode] = {n: p.grad for n, p in model.named_parameters() if p.requires_grad and "lora_A" in n}
        assert all(g.dtype == torch.float32 for g in grads[mode].values())
        assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    assert losses["input"] == pytest.approx(losses["fp32"], rel=0.02)
    cos = [torch.nn.functional.cosine_similarity(grads["fp32"][n].flatten(), grads["input"][n].flatten(), dim=0)
           for n in grads["fp32"]]
    assert min(cos) > 0.9
    with pytest.raises(SystemExit, match="lora_compute"):
        _cfg(lora_compute="int8")


def test_compiled_layers_train_with_the_same_loss_and_decode_eagerly():
    from biotag.models.torch_tagger import compile_layers
    from biotag.models.train_llm import config_hash

    torch.set_num_threads(1)
    torch._dynamo.reset()
    batch = make_batch()
    model = tiny_model()
    eager_loss = model.loss(batch)[0].item()
    graphs = []

    def counting_backend(gm, example_inputs):      # records every graph dynamo hands to a backend
        graphs.append(gm)
        return gm.forward

    assert compile_layers(model.body, backend=counting_backend) == len(model.body.layers)
    with torch.no_grad():                          # decoding and held-out losses: eager, no compile
        assert model.loss(batch)[0].item() == pytest.approx(eager_loss, abs=1e-6)
    assert graphs == []
    loss = model.loss(batch)[0]                    # a training step: the compiled layers
    assert graphs
    assert loss.item() == pytest.approx(eager_loss, abs=1e-5)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad and "lora_A" in n)
    torch._dynamo.reset()
    raw = {"name": "t", "datasets": {"bc5cdr": {}}, "steps": 10, "lr": 1e-3}
    assert config_hash({**raw, "compile": "layers"}) == config_hash(raw)
    with pytest.raises(SystemExit, match="compile"):
        _cfg(compile="all")


def test_bf16_autocast_trains_and_unknown_precision_is_refused():
    from biotag.models.train_llm import autocast

    torch.set_num_threads(1)
    model = tiny_model()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    batch = make_batch()
    cfg = _cfg(autocast="bf16")
    with autocast(cfg):
        assert torch.is_autocast_enabled("cpu")
    losses = []
    for _ in range(15):
        with autocast(cfg):
            loss, _ = model.loss(batch)
        assert loss.dtype == torch.float32          # the loss itself is computed in fp32
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    with pytest.raises(SystemExit, match="autocast"):
        _cfg(autocast="fp8")
    with pytest.raises(SystemExit, match="weights"):
        _cfg(weights="int4")


def test_config_is_validated_before_anything_runs():
    with pytest.raises(SystemExit, match="unknown setting"):
        _cfg(bacth_size=8)
    with pytest.raises(SystemExit, match="missing"):
        from biotag.models.train_llm import TrainConfig

        TrainConfig.from_dict({"name": "t", "datasets": {}})
    with pytest.raises(SystemExit, match="share"):
        _cfg(profile={"share": 1.5})
    c = _cfg()
    assert c.pack_len == 0 and c.weights == "fp32" and c.lora["r"] == 16   # defaults in one place


def test_config_hash_reads_the_file_and_ignores_bookkeeping():
    from biotag.models.train_llm import config_hash

    raw = {"name": "t", "datasets": {"bc5cdr": {}}, "steps": 10, "lr": 1e-3}
    h = config_hash(raw)
    assert config_hash({**raw, "threads": 1, "log_every": 3, "ckpt_minutes": 1, "curve": {"every": 5}}) == h
    assert config_hash({**raw, "lr": 2e-3}) != h and config_hash({**raw, "pack_len": 256}) != h


def _packable_seqs():
    task = Task.for_corpus("bc5cdr")
    exs = [Example(task, "aspirin induced asthma in a patient".split(), [Span(0, 1, "Chemical"), Span(2, 3, "Disease")]),
           Example(task, "cisplatin toxicity".split(), [Span(0, 1, "Chemical")]),
           Example(task, "no adverse events were seen after heparin".split(), [Span(6, 7, "Chemical")]),
           Example(task, "renal failure".split(), [Span(0, 2, "Disease")])]
    return [s for e in exs for s in example_sequences(TABLE, e)]


def test_packed_batches_give_the_same_loss_as_padded_ones():
    from biotag.models.torch_tagger import collate, pack

    torch.set_num_threads(1)
    model = tiny_model()
    model.eval()
    seqs = _packable_seqs()
    packed = pack(seqs, pack_len=120)
    assert packed["ids"].shape[0] < len(seqs)                  # several sequences share a row
    assert packed["tokens"] == sum(len(s.ids) for s in seqs)
    with torch.no_grad():
        a = model.loss(collate(seqs))[0].item()
        b = model.loss(packed)[0].item()
    assert b == pytest.approx(a, rel=1e-5)
    # the eager attention kernel (a training option) computes the same packed loss
    model.peft.base_model.model.config._attn_implementation = "eager"
    with torch.no_grad():
        assert model.loss(packed)[0].item() == pytest.approx(a, rel=1e-5)
    model.peft.base_model.model.config._attn_implementation = "sdpa"
    # a row that leaked attention across sequences would change the loss: check the test can fail
    leaky = dict(packed, pos_ids=torch.arange(packed["ids"].shape[1]).expand_as(packed["ids"]))
    with torch.no_grad():
        assert model.loss(leaky)[0].item() != pytest.approx(a, rel=1e-5)


def test_partial_label_loss_ranks_only_the_openers_of_annotated_types():
    from biotag.models.llm_data import profile_example
    from biotag.models.torch_tagger import collate

    ex = Example(Task.for_corpus("ncbi-disease"), "aspirin induced asthma".split(), [Span(2, 3, "Disease")])
    pex = profile_example(ex, "profile-en")
    assert "Chemical" in pex.task.types and pex.allowed == ("Disease",)
    (seq,) = example_sequences(TABLE, pex)
    chem, dis = TABLE.opener_id("Chemical"), TABLE.opener_id("Disease")
    assert all(chem not in c for c in seq.candidates)            # never "do not open Chemical here"
    assert any(dis in c for c in seq.candidates)
    # the prompt is the profile's: it names every English type
    full = example_sequences(TABLE, Example(pex.task, pex.words, pex.spans))[0]
    assert seq.ids == full.ids and any(chem in c for c in full.candidates)
    # the loss: raising the Chemical opener's score changes nothing under partial labels
    torch.set_num_threads(1)
    model = tiny_model()
    model.eval()
    batch = collate([seq])
    with torch.no_grad():
        before = model.loss(batch)[0].item()
        model.marker_emb[model.marker_ids.index(chem)] *= 50.0
        after = model.loss(batch)[0].item()
        full_after = model.loss(collate([full]))[0].item()
    assert after == pytest.approx(before, rel=1e-6)
    model2 = tiny_model()
    model2.eval()
    with torch.no_grad():
        assert full_after != pytest.approx(model2.loss(collate([full]))[0].item(), rel=1e-4)


def test_openers_of_every_type_compete_where_the_gold_opens_an_entity():
    from biotag.models.llm_data import profile_example

    ex = Example(Task.for_corpus("ncbi-disease"), "the breast carcinoma recurred".split(), [Span(1, 3, "Disease")])
    plain = example_sequences(TABLE, profile_example(ex, "profile-en"))[0]
    comp_ex = profile_example(ex, "profile-en", compete_at_openings=True)
    (comp,) = example_sequences(TABLE, comp_ex)
    anat, dis = TABLE.opener_id("Anatomy"), TABLE.opener_id("Disease")
    assert comp.ids == plain.ids and comp.positions == plain.positions
    opening = [k for k, (c, g) in enumerate(zip(comp.candidates, comp.gold)) if c[g] == dis]
    assert len(opening) == 1
    for k, (c, p) in enumerate(zip(comp.candidates, plain.candidates)):
        if k in opening:   # "breast carcinoma" opens a Disease: not Anatomy, not any other type
            assert anat in c and anat not in p and set(p) < set(c)
            assert all(TABLE.opener_id(t) in c for t in comp_ex.task.types if TABLE.has_type(t))
        else:              # elsewhere the corpus says nothing about other types
            assert c == p and anat not in c
    # the gold choice is the same token in both
    assert [c[g] for c, g in zip(comp.candidates, comp.gold)] == [c[g] for c, g in zip(plain.candidates, plain.gold)]


def test_profile_instruction_round_trips_through_the_decoder():
    from biotag.models.llm_data import profile_example

    ex = Example(Task.for_corpus("bc5cdr"), "aspirin induced asthma in renal failure".split(),
                 [Span(0, 1, "Chemical"), Span(2, 3, "Disease"), Span(4, 6, "Disease")])
    pex = profile_example(ex, "profile-en")
    seqs = example_sequences(TABLE, pex)
    dec = ConstrainedDecoder(TeacherBackend(seqs), TABLE, speculative=True)
    assert sorted(tag_words(dec, pex.task, pex.words)) == sorted(pex.spans)
    assert Task.for_corpus("profile-en").types[:3] == ("Disease", "Symptom", "Chemical")
    # genia's fine types become Gene under the profile
    g = profile_example(Example(Task.for_corpus("genia"), ["IL-2", "gene"], [Span(0, 2, "DNA")]), "profile-en")
    assert g.spans == [Span(0, 2, "Gene")] and g.allowed == ("Gene", "CellType", "CellLine")


def test_resume_from_the_committed_small_state_gives_the_same_next_loss(tmp_path):
    """state.safetensors (LoRA + marker rows, bf16) is what git carries; a run resumed from it
    continues with the same weights: the next loss equals the one of the bf16-rounded weights."""
    from safetensors.torch import load_file

    from biotag.models.train_llm import save_state

    torch.set_num_threads(1)
    batch = make_batch()
    m1 = tiny_model()
    o1 = torch.optim.AdamW([p for p in m1.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(3):
        loss, _ = m1.loss(batch)
        o1.zero_grad()
        loss.backward()
        o1.step()
    raw = {"name": "t", "datasets": {"bc5cdr": {}}, "steps": 10, "lr": 1e-3}
    save_state(tmp_path, m1, 3, raw, {"examples": 24})
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["step"] == 3 and state["examples"] == 24
    m1.load_trainable_state({k: v.to(torch.bfloat16).float() for k, v in m1.trainable_state().items()})
    m2 = tiny_model()
    m2.load_trainable_state({k: v.float() for k, v in load_file(str(tmp_path / "state.safetensors")).items()})
    with torch.no_grad():
        assert m2.loss(batch)[0].item() == pytest.approx(m1.loss(batch)[0].item(), rel=1e-6)


@pytest.mark.data
def test_the_refactored_trainer_reads_default_json_as_before():
    """The shipped run's config hash and its first 20 batches, recorded with the trainer before
    the TrainConfig/packing refactor, are unchanged (a resuming run keeps its batches)."""
    import hashlib

    from biotag.models import train_llm as T
    from biotag.models.gemma import token_table

    if not (_shared_data() / "ncbi-disease").is_dir():
        pytest.skip("needs ../shared/data")
    pytest.importorskip("llama_cpp")
    cfg, raw = T.load_config(T.REPO / "models/configs/default.json")
    assert T.config_hash(raw) == "c415ad116930"
    table = token_table()
    mix = T.load_mixture(cfg, table)
    T.add_dictionary(cfg, mix)
    h = hashlib.sha256()
    for s in range(20):
        for seq in T.batch_at(cfg, s, 0, mix, table, cfg.max_len):
            h.update(json.dumps([seq.ids, seq.positions, seq.candidates, seq.gold]).encode())
    assert h.hexdigest() == "a8034b8e313550ff1845161c4984135950804534d8cc74cd232ccc6fb1c28485"


def test_sigterm_pauses_the_run_after_the_current_step():
    import os
    import signal

    from biotag.models.train_llm import pause_on_signal

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop = pause_on_signal()
        assert not stop
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop == ["SIGTERM"]
        with pytest.raises(KeyboardInterrupt):       # a second signal stops at once
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@pytest.fixture
def tiny_run(monkeypatch, tmp_path):
    """The trainer over the tiny model and a seven-sentence mixture, its signal handlers restored
    afterwards: a function of the config's overrides that returns (TrainConfig, raw dict)."""
    import signal
    from pathlib import Path

    from biotag.models import gemma
    from biotag.models import train_llm as T

    task = Task.for_corpus("bc5cdr")
    words = "aspirin induced asthma in a patient with renal failure".split()
    mix = {"bc5cdr": [Example(task, words[i:], [Span(0, 1, "Chemical")] if i == 0 else []) for i in range(6)]
           + [Example(task, "cisplatin toxicity".split(), [Span(0, 1, "Chemical")])]}
    monkeypatch.setattr(T, "build_model", lambda cfg, table: tiny_model(seed=cfg.seed))
    monkeypatch.setattr(T, "load_mixture", lambda cfg, table, split="train": {k: list(v) for k, v in mix.items()})
    monkeypatch.setattr(gemma, "token_table", lambda *a: TABLE)
    monkeypatch.setattr(gemma, "base_gguf_path", lambda: Path("base.gguf"))
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def make(name, **kw):
        raw = {"name": name, "datasets": {"bc5cdr": {}}, "steps": 4, "lr": 1e-3, "batch_size": 2, "warmup": 2,
               "threads": 1, "seed": 3, "run_dir": str(tmp_path / name), "artifact_dir": str(tmp_path / f"{name}-art"),
               **kw}
        return T.TrainConfig.from_dict(raw), raw

    yield make
    for s, h in old.items():
        signal.signal(s, h)


def test_a_paused_run_resumes_to_the_uninterrupted_weights(tiny_run):
    from safetensors.torch import load_file

    from biotag.models import train_llm as T

    cfg, raw = tiny_run("a")
    T.train(cfg, raw)
    cb, rb = tiny_run("b")
    T.train(cb, rb, max_steps=2)
    assert not cb.artifact_path.exists()                        # paused: no artifacts
    with pytest.raises(SystemExit, match="holds a run"):
        T.train(cb, rb)
    T.train(cb, rb, resume=True)
    a = torch.load(cfg.run_path / "ckpt.pt", weights_only=False)
    b = torch.load(cb.run_path / "ckpt.pt", weights_only=False)
    assert list(b) == ["step", "trainable", "opt", "config_hash", "wall_s", "examples"]
    assert (b["step"], b["examples"], b["config_hash"]) == (4, 8, T.config_hash(rb))
    for k, v in a["trainable"].items():
        assert torch.equal(v, b["trainable"][k]), k
    state = json.loads((cb.run_path / "state.json").read_text())
    assert list(state) == ["step", "config_hash", "wall_s", "examples"] and state["step"] == 4
    small = load_file(str(cb.run_path / "state.safetensors"))
    assert small.keys() == b["trainable"].keys() and {v.dtype for v in small.values()} == {torch.bfloat16}
    assert sorted(p.name for p in cb.artifact_path.iterdir()) == ["adapter.safetensors", "config.json",
                                                                  "gazetteer.tsv"]
    # without the checkpoint the run continues from its small state, and only under its own config
    (cb.run_path / "ckpt.pt").unlink()
    other, other_raw = tiny_run("b", steps=6)
    with pytest.raises(SystemExit, match="state.json was written by a different config"):
        T.train(other, other_raw, resume=True)
    snapshot = T.export_state(cb, rb, cb.run_path / "snapshot")
    meta = json.loads((snapshot / "config.json").read_text())
    assert (meta["steps"], meta["examples"], meta["snapshot_of_run"]) == (4, 8, T.config_hash(rb))


def test_precision_check_trains_both_paths_from_one_start_on_the_same_batches(tiny_run):
    from biotag.models import train_llm as T

    cfg, _ = tiny_run("p", pack_len=64, grad_accum=2)
    r = T.precision_check(cfg, 3, held_out=2)
    ref, conf = r["modes"]["reference"], r["modes"]["configured"]
    assert (ref["pack_len"], conf["pack_len"]) == (0, 64)
    # packing computes the same loss as padding: same start, same batches, same losses
    assert conf["losses"] == pytest.approx(ref["losses"], rel=1e-4)
    assert conf["held_out_loss"] == pytest.approx(ref["held_out_loss"], rel=1e-4)
    assert len(ref["losses"]) == 3 and r["speedup"] > 0


def test_a_continuation_draws_its_parents_next_batches_from_its_snapshot(tiny_run, monkeypatch):
    """start_step continues a run from a snapshot: the same batches the parent would have drawn
    next, its first loss the parent's loss at that step, and its own schedule (linear decay to 0)."""
    from biotag.models import train_llm as T

    seen = []
    real_step = T.train_step

    def recording(cfg, model, opt, base_lrs, step, micro):
        r = real_step(cfg, model, opt, base_lrs, step, micro)
        seen.append((cfg.name, step, round(r["loss"], 6), opt.param_groups[0]["lr"],
                     [b["ids"].tolist() for b in micro]))
        return r

    monkeypatch.setattr(T, "train_step", recording)
    parent, praw = tiny_run("a", steps=6)
    T.train(parent, praw, max_steps=3)
    snapshot = T.export_state(parent, praw, parent.run_path / "snapshot")
    T.train(parent, praw, resume=True, max_steps=4)
    cont, craw = tiny_run("c", steps=6, start_step=3, warmup=1, decay="linear", lr=2e-3,
                          init_adapter=str(snapshot))
    T.train(cont, craw)
    a = {s: (loss, lr, ids) for n, s, loss, lr, ids in seen if n == "a"}
    c = {s: (loss, lr, ids) for n, s, loss, lr, ids in seen if n == "c"}
    assert sorted(c) == [3, 4, 5]
    assert c[3][2] == a[3][2]                                      # the parent's next batch
    assert c[3][0] == pytest.approx(a[3][0], rel=1e-3)             # from the parent's weights
    assert [c[s][1] for s in (3, 4, 5)] == pytest.approx([2e-3, 2e-3, 1e-3])   # warmup 1, then to 0 at 6
    ck = torch.load(cont.run_path / "ckpt.pt", weights_only=False)
    assert (ck["step"], ck["examples"]) == (6, 12)
    with pytest.raises(SystemExit, match="start_step"):
        tiny_run("d", steps=6, start_step=3)                       # a continuation needs its parent
    with pytest.raises(SystemExit, match="start_step"):
        tiny_run("e", steps=3, start_step=3, init_adapter=str(snapshot))


def test_the_curve_png_draws_a_continuation_after_its_parent(tmp_path):
    from biotag.models.train_llm import draw_curve

    head = "step,examples,wall_s,train_loss,ncbi-disease,mean_f1\n"
    parent, cont = tmp_path / "a.csv", tmp_path / "b.csv"
    parent.write_text(head + "0,0,1,0.5,60.0,60.0\n400,6400,9,0.2,70.0,70.0\n")
    cont.write_text(head + "600,9600,4,0.1,72.0,72.0\n")
    png = draw_curve(parent, tmp_path / "b.png", (cont,))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="do not follow"):
        draw_curve(cont, tmp_path / "c.png", (parent,))
