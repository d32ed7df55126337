"""End-to-end threshold tuning of the selector on LLM candidates (pure logic, no model)."""
from __future__ import annotations

import json

import pytest

from biotag.runtime.document import Document, Entity
from biotag.runtime.errors import InputError
from biotag.runtime.selector_eval import filtered, load_pred_file, micro, tune_thresholds

TEXT = "aspirin and ibuprofen caused asthma and rash in the patient"


def doc(spans, did="d1"):
    return Document(did, TEXT, [Entity(s, e, t, TEXT[s:e]) for s, e, t in spans], "en")


ASPIRIN, IBU, ASTHMA, RASH, PATIENT = (0, 7, "Chemical"), (12, 21, "Chemical"), (29, 35, "Disease"), \
    (40, 44, "Disease"), (52, 59, "Disease")


def test_threshold_drops_low_scoring_false_positive():
    gold = [doc([ASPIRIN, IBU, ASTHMA, RASH])]
    pred = [doc([ASPIRIN, ASTHMA, RASH, PATIENT])]
    scores = [[0.9, 0.8, 0.7, 0.1]]
    thr, rep = tune_thresholds([(gold, pred, scores)])
    assert thr["Chemical"] == 0.0                       # one true candidate: filtering cannot help
    assert 0.1 < thr["Disease"] <= 0.7                  # the spurious "patient" goes, rash stays
    after = micro(gold, filtered(pred, scores, thr))
    before = micro(gold, pred)
    assert after["f1"] > before["f1"]
    assert after["tp"] == before["tp"] == 3 and after["pred"] == 3
    assert rep["Disease"]["f1_with"] > rep["Disease"]["f1_without"]


def test_keep_everything_when_filtering_would_lose_recall():
    gold = [doc([ASTHMA, RASH])]
    pred = [doc([ASTHMA, RASH])]
    thr, _ = tune_thresholds([(gold, pred, [[0.2, 0.05]])])
    assert thr["Disease"] == 0.0
    assert micro(gold, filtered(pred, [[0.2, 0.05]], thr))["f1"] == 100.0


def test_recall_counts_gold_the_llm_missed():
    gold = [doc([ASPIRIN, IBU, ASTHMA])]
    pred = [doc([ASPIRIN])]
    m = micro(gold, pred)
    assert m["precision"] == 100.0 and m["recall"] == pytest.approx(33.33, abs=0.01)


def test_min_gain_keeps_all_for_small_gains():
    gold = [doc([ASTHMA, RASH, PATIENT])] + [doc([ASTHMA], did=f"x{i}") for i in range(20)]
    pred = [doc([ASTHMA, RASH, PATIENT, ASPIRIN[:2] + ("Disease",)])] + \
           [doc([ASTHMA], did=f"x{i}") for i in range(20)]
    scores = [[0.9, 0.9, 0.9, 0.1]] + [[0.9]] * 20
    thr0, _ = tune_thresholds([(gold, pred, scores)])
    assert thr0["Disease"] > 0.1
    thr5, _ = tune_thresholds([(gold, pred, scores)], min_gain=5.0)   # the gain is ~2.3 points
    assert thr5["Disease"] == 0.0


def test_min_support_leaves_thin_keys_untuned():
    gold = [doc([ASPIRIN, IBU, ASTHMA, RASH])]
    pred = [doc([ASPIRIN, ASTHMA, RASH, PATIENT])]
    scores = [[0.9, 0.8, 0.7, 0.1]]
    thr, rep = tune_thresholds([(gold, pred, scores)], tasks=["bc5cdr"])
    assert thr["bc5cdr/Disease"] > 0.1 and thr["Disease"] > 0.1
    # 3 Disease candidates < 4: the instruction key is left to the type, the type keeps all
    thr4, rep4 = tune_thresholds([(gold, pred, scores)], tasks=["bc5cdr"], min_support=4)
    assert "bc5cdr/Disease" not in thr4 and thr4["Disease"] == 0.0
    assert rep4["bc5cdr/Disease"]["untuned"] and rep4["bc5cdr/Disease"]["candidates"] == 3
    # pooled over two corpora the type has enough support and is tuned again
    thr_p, _ = tune_thresholds([(gold, pred, scores)] * 2, tasks=["bc5cdr", "ncbi-disease"], min_support=4)
    assert thr_p["Disease"] > 0.1 and "bc5cdr/Disease" not in thr_p


def test_cross_validated_rule_rows():
    from biotag.runtime.selector_eval import cross_validate_rule

    gold = [doc([ASTHMA, RASH], did=f"d{i}") for i in range(8)]
    pred = [doc([ASTHMA, RASH, PATIENT], did=f"d{i}") for i in range(8)]
    scores = [[0.9, 0.8, 0.1]] * 8
    rows = cross_validate_rule([(gold, pred, scores)], ["ncbi-disease"], [(0, 0.0), (100, 0.0)])
    assert [r["min_support"] for r in rows] == [0, 100]
    assert rows[0]["mean_delta_f1"] == pytest.approx(20.0, abs=0.01)   # 80 -> 100 on held-out halves
    assert rows[1]["mean_delta_f1"] == 0.0                             # untuned: keeps everything


def test_pred_file_name_and_content(tmp_path):
    p = tmp_path / "ncbi-disease.dev.jsonl"
    p.write_text(doc([ASTHMA]).to_jsonl_line() + "\n", encoding="utf-8")
    corpus, split, docs = load_pred_file(p)
    assert (corpus, split, len(docs), docs[0].entities[0].text) == ("ncbi-disease", "dev", 1, "asthma")
    bad = tmp_path / "preds.jsonl"
    bad.write_text("", encoding="utf-8")
    with pytest.raises(InputError):
        load_pred_file(bad)


def test_export_runtime_config_next_to_onnx(tmp_path):
    from biotag.export.selector import write_runtime_config

    onnx = tmp_path / "selector.int8.onnx"
    onnx.write_bytes(b"not really onnx")
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    thr = {"thresholds": {"Disease": 0.3, "*": 0.0}}
    cfg = json.loads(write_runtime_config(onnx, thr).read_text(encoding="utf-8"))
    assert cfg["file"] == onnx.name and cfg["tokenizer"] == "tokenizer.json"
    assert cfg["thresholds"] == {"Disease": 0.3} and cfg["default"] == 0.0
    assert len(cfg["sha256"]["model"]) == 64


def test_quant_report_verdict_and_card_section(tmp_path):
    from biotag.export.report import CARD_BEGIN, card_section, verdict, write_into_card

    def row(f1s):
        return {"mib": 1.0, "load_s": 0.1, "dev": [{"corpus": c, "f1": f} for c, f in f1s.items()]}

    rep = {"sample": 40, "seed": 0, "marker_bias": 2.0, "threads": 2, "hardware": "test",
           "llm": {"fp32": row({"a": 80.0, "b": 70.0}), "f16": row({"a": 80.0, "b": 70.1}),
                   "q8_0": row({"a": 79.8, "b": 69.9}), "q4_k_m": row({"a": 78.0, "b": 70.0})}}
    v = verdict(rep, 0.5)
    assert rep["smallest_within_tolerance"] == "q8_0"          # q4_k_m drops 2.0 on corpus a
    assert rep["max_drop"]["q4_k_m"] == 2.0 and "q8_0" in v
    card = tmp_path / "CARD.md"
    card.write_text("# card\n\ntext\n", encoding="utf-8")
    rep["verdict"] = v
    write_into_card(card, card_section(rep))
    write_into_card(card, card_section(rep))                     # replaced, not appended twice
    text = card.read_text(encoding="utf-8")
    assert text.count(CARD_BEGIN) == 1 and text.startswith("# card")
    assert "| q4_k_m | 1.0 | 0.1 | 78.00 | 70.00 | +2.00 |" in text


def test_per_task_thresholds_override_the_pooled_type():
    from biotag.runtime.tagger import threshold_for

    # corpus A: a low-scoring false positive to drop; corpus B: the same type, all correct, low scores
    gold_a, pred_a = [doc([ASTHMA, RASH])], [doc([ASTHMA, RASH, PATIENT])]
    gold_b, pred_b = [doc([ASTHMA, RASH], "b")], [doc([ASTHMA, RASH], "b")]
    items = [(gold_a, pred_a, [[0.9, 0.8, 0.3]]), (gold_b, pred_b, [[0.35, 0.2]])]
    thr, rep = tune_thresholds(items, tasks=["A", "B"])
    assert thr["B/Disease"] == 0.0 and 0.3 < thr["A/Disease"] <= 0.8
    assert micro(gold_b, filtered(pred_b, [[0.35, 0.2]], thr, "B"))["f1"] == 100.0
    assert micro(gold_a, filtered(pred_a, [[0.9, 0.8, 0.3]], thr, "A"))["f1"] == 100.0
    assert threshold_for(thr, "Disease", "C") == thr["Disease"]        # an unseen instruction: pooled
    assert threshold_for({"*": 0.1}, "Gene", "A") == 0.1


def test_card_sections_from_measured_json():
    from biotag.models.selector_card import _ablation_e2e, _cv_table

    cv = {"cv": [{"min_support": 0, "min_gain": 0.0, "mean_delta_f1": 1.29, "worst_delta_f1": -0.8},
                 {"min_support": 100, "min_gain": 0.0, "mean_delta_f1": 1.07, "worst_delta_f1": -0.38}]}
    geo = {"fusion": "geometric", "candidates": 5693,
           "cv": [{"min_support": 100, "min_gain": 0.0, "mean_delta_f1": 2.1, "worst_delta_f1": -0.3}]}
    text = "\n".join(_cv_table([cv, geo]))
    assert "| selector | 100 | 0.0 | +1.07 | -0.38 |" in text
    assert "| geometric | 100 | 0.0 | +2.10 | -0.30 |" in text and "5693 candidates" in text
    test = {"mean_delta_f1": 0.5, "worst_delta_f1": -1.0,
            "corpora": [{"corpus": "ncbi-disease", "delta_f1": -1.0}, {"corpus": "s800", "delta_f1": 2.0}]}
    rows = "\n".join(_ablation_e2e([("BCE only", {"mean_delta_f1": 1.4}, test)]))
    assert "| BCE only | +1.40 | +0.50 | -1.00 | -1.00 | +2.00 |" in rows


def test_fusion_scores():
    from biotag.runtime.errors import ModelError
    from biotag.runtime.selector import fuse
    from biotag.runtime.selector_eval import score_candidates

    assert fuse(0.4, 0.9, "selector") == 0.4
    assert fuse(0.4, 0.9, "geometric") == pytest.approx(0.6)
    assert fuse(0.4, None, "geometric") == 0.4          # a dictionary match has no LLM confidence
    with pytest.raises(ModelError):
        fuse(0.4, 0.9, "product")

    class Sel:
        def score(self, text, ents):
            return [0.25 for _ in ents]

    d = Document("d1", TEXT, [Entity(*ASPIRIN, TEXT[0:7], 0.64), Entity(*ASTHMA, TEXT[29:35])], "en")
    assert score_candidates(Sel(), [d, doc([])], "geometric") == [[pytest.approx(0.4), 0.25], []]
    assert score_candidates(Sel(), [d], "selector") == [[0.25, 0.25]]


def test_runtime_config_records_the_fusion(tmp_path):
    from biotag.export.selector import write_runtime_config

    onnx = tmp_path / "selector.int8.onnx"
    onnx.write_bytes(b"x")
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    plain = json.loads(write_runtime_config(onnx, {"thresholds": {"*": 0.0}}).read_text(encoding="utf-8"))
    assert plain["fusion"] == "selector" and "selector probability >=" in plain["threshold_rule"]
    geo = json.loads(write_runtime_config(onnx, {"thresholds": {"*": 0.0}, "fusion": "geometric"})
                     .read_text(encoding="utf-8"))
    assert geo["fusion"] == "geometric" and "geometric mean" in geo["threshold_rule"]


def test_selector_card_merges_runs_on_different_corpora():
    from biotag.models.selector_card import merge_evals

    def run(corpora, cands, secs):
        return {"candidates": cands, "scoring_s": secs, "ms_per_candidate": 1000 * secs / cands,
                "corpora": [{"corpus": c, "delta_f1": d} for c, d in corpora],
                "mean_delta_f1": sum(d for _, d in corpora) / len(corpora),
                "worst_delta_f1": min(d for _, d in corpora)}

    old = run([("genia", 4.5), ("s800", 3.0), ("bc5cdr", 9.9)], 1000, 3.0)
    new = run([("bc5cdr", 2.0), ("cmeee", -0.5)], 3000, 6.0)
    m = merge_evals([old, new])
    assert [r["corpus"] for r in m["corpora"]] == ["bc5cdr", "cmeee", "genia", "s800"]
    assert next(r for r in m["corpora"] if r["corpus"] == "bc5cdr")["delta_f1"] == 2.0  # the later run wins
    assert m["candidates"] == 4000 and m["ms_per_candidate"] == 2.25
    assert m["mean_delta_f1"] == 2.25 and m["worst_delta_f1"] == -0.5
    assert merge_evals([old]) is old and merge_evals([]) is None


def test_llm_confidence_of_predictions_that_went_through_the_selector(tmp_path):
    """A prediction file written through the selector carries the fused score in ``score`` and the
    LLM's own confidence in ``meta.llm_score``: re-scoring fuses with the latter, never the fused
    score again; --pred-dir writes the kept candidates with the new fused score."""
    from biotag.runtime.selector_eval import score_candidates, write_pred_file

    class Sel:
        def score(self, text, ents):
            return [0.25 for _ in ents]

    through = Entity(*ASPIRIN, TEXT[0:7], 0.5, meta={"llm_score": 0.64, "selector_score": 0.39})
    plain = Entity(*ASTHMA, TEXT[29:35], 0.64)
    d = Document("d1", TEXT, [through, plain], "en")
    assert score_candidates(Sel(), [d], "geometric") == [[pytest.approx(0.4), pytest.approx(0.4)]]
    kept = filtered([d], [[0.4, 0.1]], {"*": 0.3})
    out = tmp_path / "pred" / "bc5cdr.dev.jsonl"
    write_pred_file(out, [d], kept, {"*": 0.3, "bc5cdr/Chemical": 0.35}, "bc5cdr")
    _, _, [back] = load_pred_file(out)
    assert [(e.type, e.score, e.meta["llm_score"], e.meta["threshold"]) for e in back.entities] == \
        [("Chemical", 0.4, 0.64, 0.35)]
    assert "selector_score" not in back.entities[0].meta   # the input's, another selector's score
