"""``"attention": "segments"``: packed rows attended one sequence at a time with causal SDPA and no
mask give the loss and gradients of the masked packed rows and of the padded batch, and no
sequence can see another."""
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from biotag.models import segment_attention as SA  # noqa: E402
from biotag.models.llm_data import Example, example_sequences  # noqa: E402
from biotag.models.torch_tagger import collate, pack  # noqa: E402
from biotag.runtime.codec import Span  # noqa: E402
from biotag.runtime.prompting import Task  # noqa: E402

from test_train_llm import TABLE, _packable_seqs, tiny_model  # noqa: E402

BOTH_LAYER_TYPES = {"layer_types": ["sliding_attention", "full_attention"]}


def _seqs():
    """Sequences that pack (pack_len 150) into rows of two or three sequences and one row holding a
    single sequence longer than pack_len."""
    task = Task.for_corpus("bc5cdr")
    long = Example(task, ("patients given cisplatin and heparin developed renal failure and "
                          "later asthma after aspirin in this cohort of adults").split(),
                   [Span(2, 3, "Chemical"), Span(4, 5, "Chemical"), Span(6, 8, "Disease")])
    short = [Example(task, "asthma".split(), [Span(0, 1, "Disease")]),
             Example(task, "heparin".split(), [Span(0, 1, "Chemical")])]
    return _packable_seqs() + [s for e in [long, *short] for s in example_sequences(TABLE, e)]


def _model(dtype, **config):
    model = tiny_model(**{**BOTH_LAYER_TYPES, **config})
    for p in model.parameters():          # bf16 frozen weights, fp32 trainable ones (build_model)
        if not p.requires_grad:
            p.data = p.data.to(dtype)
    return model


def _loss_and_grads(model, batch, impl):
    model.body.config._attn_implementation = impl
    model.zero_grad(set_to_none=True)
    loss = model.loss(batch)[0]
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _assert_close(a, b, loss_tol, grad_tol=None):
    """Losses within ``loss_tol`` (relative), every gradient within ``grad_tol`` of the larger of 1
    and its largest entry."""
    assert a[0] == pytest.approx(b[0], rel=loss_tol, abs=loss_tol)
    for name, g in a[1].items():
        scale = max(1.0, b[1][name].abs().max().item())
        assert (g - b[1][name]).abs().max().item() <= (grad_tol or loss_tol) * scale, name


@pytest.mark.parametrize("bucket", [1, 16, 0])
@pytest.mark.parametrize("dtype,tol", [("float32", (1e-5, 1e-5)), ("bfloat16", (2e-4, 4e-3))])
def test_segments_give_the_loss_and_gradients_of_masked_packing_and_padding(dtype, tol, bucket, monkeypatch):
    """fp32: equal up to float rounding; bf16 frozen weights: up to bf16 rounding of the activations
    (one bf16 ulp is 2**-7 relative), which the kernels round in different orders."""
    torch.set_num_threads(1)
    monkeypatch.setattr(SA, "BUCKET", bucket)
    model = _model(getattr(torch, dtype), sliding_window=512)
    model.train()
    seqs = _seqs()
    packed = pack(seqs, pack_len=150)
    rows = packed["segments"]
    assert any(len(r) == 1 for r in rows) and any(len(r) >= 2 for r in rows)
    assert sorted(n for r in rows for n in r) == sorted(len(s.ids) for s in seqs)
    padded = _loss_and_grads(model, collate(seqs), "sdpa")
    masked = _loss_and_grads(model, packed, "sdpa")
    segments = _loss_and_grads(model, packed, "segments")
    _assert_close(segments, masked, *tol)
    _assert_close(segments, padded, *tol)


def test_packed_rows_are_attended_without_a_mask_one_call_per_group(monkeypatch):
    """Every SDPA call of a packed forward is causal with no mask; a layer makes one call per group
    of equal (rounded) lengths."""
    torch.set_num_threads(1)
    model = _model(torch.float32, sliding_window=512)
    model.body.config._attn_implementation = "segments"
    seqs = _seqs()
    packed = pack(seqs, pack_len=150)
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        calls.append((q.shape, kw["attn_mask"], kw["is_causal"]))
        return sdpa(q, k, v, **kw)

    monkeypatch.setattr(SA.F, "scaled_dot_product_attention", spy)
    lengths = sorted(len(s.ids) for s in seqs)
    for bucket, groups in ((1, len(set(lengths))), (0, 1)):
        monkeypatch.setattr(SA, "BUCKET", bucket)
        calls.clear()
        with torch.no_grad():
            model.loss(packed)
        assert len(calls) == groups * len(model.body.layers)
        assert all(mask is None and causal for _, mask, causal in calls)
        assert sum(shape[0] for shape, _, _ in calls) == len(seqs) * len(model.body.layers)
    plan = SA.plan_segments([[3, 2], [3]], T=5, bucket=1)
    assert plan.calls == 2 and [L for L, _ in plan.groups] == [2, 3]
    assert plan.groups[0][1].tolist() == [3, 4] and plan.groups[1][1].tolist() == [0, 1, 2, 5, 6, 7]
    assert plan.scatter.tolist() == [2, 3, 4, 0, 1, 5, 6, 7, 8, 8]      # 8: the zero row (padding)
    padded = SA.plan_segments([[3, 2], [3]], T=5, bucket=0)
    assert padded.calls == 1 and padded.groups[0][1].tolist() == [0, 1, 2, 3, 4, 4, 5, 6, 7]


@pytest.mark.parametrize("bucket", [1, 16])
def test_segments_longer_than_the_sliding_window_are_attended_under_the_window(bucket, monkeypatch):
    """A segment longer than a sliding layer's window keeps the window's semantics (banded mask)."""
    torch.set_num_threads(1)
    monkeypatch.setattr(SA, "BUCKET", bucket)
    model = _model(torch.float32, sliding_window=56)
    seqs = _seqs()
    assert max(len(s.ids) for s in seqs) > 56 > min(len(s.ids) for s in seqs)
    packed = pack(seqs, pack_len=150)
    segments = _loss_and_grads(model, packed, "segments")
    _assert_close(segments, _loss_and_grads(model, packed, "sdpa"), 1e-5)
    _assert_close(segments, _loss_and_grads(model, collate(seqs), "sdpa"), 1e-5)
    wide = _model(torch.float32, sliding_window=512)       # the window matters: the test can fail
    assert _loss_and_grads(wide, packed, "segments")[0] != pytest.approx(segments[0], rel=1e-5)


def test_no_sequence_sees_another_in_its_row():
    """Changing the tokens of the first sequence of a row leaves the hidden states of the other
    sequences of that row unchanged; one segment spanning both would not."""
    torch.set_num_threads(1)
    model = _model(torch.float32)
    model.eval()
    model.body.config._attn_implementation = "segments"
    packed = pack(_seqs(), pack_len=150)
    r = next(i for i, row in enumerate(packed["segments"]) if len(row) >= 2)
    a = packed["segments"][r][0]
    n = sum(packed["segments"][r])
    changed = dict(packed, ids=packed["ids"].clone())
    changed["ids"][r, 1:a] = torch.randint(3, 50000, (a - 1,))
    with torch.no_grad():
        h0 = model.hidden(packed["ids"], None, packed["pos_ids"], packed["segments"])
        h1 = model.hidden(changed["ids"], None, changed["pos_ids"], changed["segments"])
        assert not torch.equal(h0[r, :a], h1[r, :a])
        assert torch.equal(h0[r, a:n], h1[r, a:n])
        others = [i for i in range(len(packed["segments"])) if i != r]
        assert torch.equal(h0[others], h1[others])
        merged = [row if i != r else [n] for i, row in enumerate(packed["segments"])]
        l0 = model.hidden(packed["ids"], None, packed["pos_ids"], merged)
        l1 = model.hidden(changed["ids"], None, changed["pos_ids"], merged)
        assert not torch.allclose(l0[r, a:n], l1[r, a:n])


def test_calls_without_segments_are_computed_as_sdpa():
    """Padded batches and KV-cached decoding under "segments" give the scores of "sdpa"."""
    from biotag.models.torch_tagger import CachedTorchBackend

    torch.set_num_threads(1)
    model = _model(torch.float32)
    model.eval()
    seqs = _seqs()[:3]
    out = {}
    for impl in ("sdpa", "segments"):
        model.body.config._attn_implementation = impl
        with torch.no_grad():
            loss = model.loss(collate(seqs))[0].item()
        be = CachedTorchBackend(model)
        ids = seqs[0].ids
        scores = [be.append(ids[:20], {19: [5, 6, 7]})[19], be.append(ids[20:30], {9: [5, 6, 7]})[9]]
        out[impl] = (loss, scores)
    assert out["segments"][0] == pytest.approx(out["sdpa"][0], rel=1e-6)
    for a, b in zip(out["segments"][1], out["sdpa"][1]):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_segments_is_a_choice_outside_the_config_hash():
    from biotag.models import train_llm as T

    base = {"name": "t", "datasets": {"bc5cdr": {}}, "steps": 10, "lr": 1e-3}
    assert T.TrainConfig.from_dict({**base, "attention": "segments"}).attention == "segments"
    with pytest.raises(SystemExit, match="attention"):
        T.TrainConfig.from_dict({**base, "attention": "flash"})
    assert T.config_hash({**base, "attention": "segments"}) == T.config_hash(base)
    configs = T.REPO / "models" / "configs"
    fast = json.loads((configs / "speed-check.json").read_text())
    seg = json.loads((configs / "speed-check-segments.json").read_text())
    assert seg == {**fast, "attention": "segments"}
    assert T.config_hash(seg) == T.config_hash(fast) == "264e104bea55"
    assert T.config_hash(T.load_config(configs / "model2.json")[1]) == "3cae0c731835"
