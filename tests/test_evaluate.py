"""`biotag eval`: strict span scores checked against hand-computed fixtures.

The fixture numbers are derived by hand in tests/fixtures/eval/README.md; the short version is
repeated next to each assertion.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from biotag.runtime.document import Document, Entity
from biotag.runtime.errors import FormatError, InputError
from biotag.runtime.evaluate import evaluate, format_report, prf, read_documents

FIX = Path(__file__).parent / "fixtures" / "eval"
GOLD = FIX / "gold.jsonl"
PRED = FIX / "pred.jsonl"


def approx(x):
    return pytest.approx(x, abs=0.005)


def doc(id_, text, *spans):
    d = Document(id_, text)
    for s, e, t in spans:
        d.add(s, e, t)
    return d


# -- hand-computed arithmetic ---------------------------------------------------------------
def test_prf_hand_computed():
    # tp=3 fp=1 fn=2 -> P = 3/4 = 75.0, R = 3/5 = 60.0, F1 = 6/(6+1+2) = 66.67
    m = prf(3, 1, 2)
    assert m["precision"] == approx(75.0)
    assert m["recall"] == approx(60.0)
    assert m["f1"] == approx(66.67)
    assert (m["tp"], m["fp"], m["fn"], m["gold"], m["pred"]) == (3, 1, 2, 5, 4)
    # nothing predicted, nothing to find: 0.0, never a division error
    assert prf(0, 0, 0)["f1"] == 0.0
    assert prf(0, 0, 4)["precision"] == 0.0


def test_small_inline_example():
    # gold: 5 entities; pred: 3 exact hits, 1 wrong type -> tp=3 fp=1 fn=2 -> 75.0 / 60.0 / 66.67
    text = "a b c d e f g h"
    g = [doc("x", text, (0, 1, "A"), (2, 3, "A"), (4, 5, "B"), (6, 7, "B"), (8, 9, "A"))]
    p = [doc("x", text, (0, 1, "A"), (2, 3, "A"), (4, 5, "B"), (6, 7, "A"))]
    r = evaluate(g, p)
    assert (r["micro"]["tp"], r["micro"]["fp"], r["micro"]["fn"]) == (3, 1, 2)
    assert r["micro"]["precision"] == approx(75.0)
    assert r["micro"]["recall"] == approx(60.0)
    assert r["micro"]["f1"] == approx(66.67)
    # A: tp 2, fp 1 (6-7 as A), fn 1 (8-9) -> 66.67 / 66.67 / 66.67
    # B: tp 1, fp 0, fn 1 (6-7 as B) -> 100 / 50 / 66.67
    assert r["per_type"]["A"]["f1"] == approx(66.67)
    assert r["per_type"]["B"]["precision"] == approx(100.0)
    assert r["per_type"]["B"]["recall"] == approx(50.0)


# -- the fixture files ----------------------------------------------------------------------
def check_fixture_result(r):
    d = r["documents"]
    assert (d["gold"], d["pred"], d["evaluated"]) == (3, 3, 3)
    assert d["missing_pred"] == 1 and d["missing_pred_ids"] == ["d3"]
    assert d["unknown_pred"] == 1 and d["unknown_pred_ids"] == ["zz"]
    # micro: tp=4 fp=2 fn=3 -> P=4/6=66.67 R=4/7=57.14 F1=8/13=61.54
    m = r["micro"]
    assert (m["tp"], m["fp"], m["fn"]) == (4, 2, 3)
    assert m["precision"] == approx(66.67)
    assert m["recall"] == approx(57.14)
    assert m["f1"] == approx(61.54)
    pt = r["per_type"]
    assert list(pt) == ["Anatomy", "Chemical", "Disease"]
    # Chemical: tp=2 fp=0 fn=0 -> 100 / 100 / 100 (the unknown doc's insulin is not an fp)
    assert (pt["Chemical"]["tp"], pt["Chemical"]["fp"], pt["Chemical"]["fn"]) == (2, 0, 0)
    assert pt["Chemical"]["f1"] == approx(100.0)
    # Disease: tp=1 fp=2 (wrong type "colon", boundary-off "Lung cancer patients")
    #          fn=2 ("Lung cancer", "Fever" in the missing doc) -> 33.33 / 33.33 / 33.33
    assert (pt["Disease"]["tp"], pt["Disease"]["fp"], pt["Disease"]["fn"]) == (1, 2, 2)
    for k in ("precision", "recall", "f1"):
        assert pt["Disease"][k] == approx(33.33)
    # Anatomy: tp=1 (Lung) fp=0 fn=1 (colon) -> 100 / 50 / 66.67
    assert (pt["Anatomy"]["tp"], pt["Anatomy"]["fp"], pt["Anatomy"]["fn"]) == (1, 0, 1)
    assert pt["Anatomy"]["precision"] == approx(100.0)
    assert pt["Anatomy"]["recall"] == approx(50.0)
    assert pt["Anatomy"]["f1"] == approx(66.67)
    n = r["nested"]
    # gold nested: colon cancer, colon, Lung cancer, Lung -> found colon cancer, Lung: 2/4 = 50
    assert (n["gold_nested"]["correct"], n["gold_nested"]["count"]) == (2, 4)
    assert n["gold_nested"]["recall"] == approx(50.0)
    # gold flat: Aspirin, cisplatin, Fever -> 2/3 = 66.67
    assert (n["gold_flat"]["correct"], n["gold_flat"]["count"]) == (2, 3)
    assert n["gold_flat"]["recall"] == approx(66.67)
    # pred nested: colon cancer, colon/Disease, Lung cancer patients, Lung -> 2/4 = 50
    assert (n["pred_nested"]["correct"], n["pred_nested"]["count"]) == (2, 4)
    assert n["pred_nested"]["precision"] == approx(50.0)
    # pred flat: Aspirin, cisplatin -> 2/2 = 100
    assert (n["pred_flat"]["correct"], n["pred_flat"]["count"]) == (2, 2)
    assert n["pred_flat"]["precision"] == approx(100.0)


def test_fixture_scores_by_hand():
    r = evaluate(read_documents(GOLD), read_documents(PRED))
    check_fixture_result(r)
    assert r["bootstrap"] is None


def test_prediction_order_does_not_matter():
    gold, pred = read_documents(GOLD), read_documents(PRED)
    assert evaluate(gold, pred) == evaluate(gold[::-1], pred[::-1])


def test_types_filter():
    # only Disease: tp=1 fp=2 fn=2 -> 33.33 everywhere; other types are absent from the table
    r = evaluate(read_documents(GOLD), read_documents(PRED), types=["Disease"])
    assert list(r["per_type"]) == ["Disease"]
    assert (r["micro"]["tp"], r["micro"]["fp"], r["micro"]["fn"]) == (1, 2, 2)
    assert r["micro"]["f1"] == approx(33.33)
    # a requested type with no entities is listed with zeros
    r = evaluate(read_documents(GOLD), read_documents(PRED), types=["Gene"])
    assert r["per_type"]["Gene"]["gold"] == 0 and r["micro"]["f1"] == 0.0


def test_duplicate_entity_counts_once():
    g = [doc("x", "abc", (0, 1, "A"))]
    p = [doc("x", "abc", (0, 1, "A"), (0, 1, "A"))]
    r = evaluate(g, p)
    assert (r["micro"]["tp"], r["micro"]["fp"]) == (1, 0)


def test_crossing_is_not_nested_and_same_span_is_not_nested():
    text = "abcdefgh"
    g = [doc("x", text, (0, 4, "A"), (2, 6, "B"), (6, 8, "A"), (6, 8, "B"))]
    r = evaluate(g, g)
    assert r["nested"]["gold_nested"]["count"] == 0
    assert r["nested"]["gold_flat"]["count"] == 4


def test_text_mismatch_is_an_error():
    with pytest.raises(InputError, match=r"'d1'.*text differs.*character 8"):
        evaluate(read_documents(GOLD), read_documents(FIX / "pred_text_mismatch.jsonl"))


def test_duplicate_document_id_is_an_error():
    g = [doc("x", "abc"), doc("x", "abc")]
    with pytest.raises(InputError, match="more than once"):
        evaluate(g, [])


def test_bootstrap_is_seeded_and_bounded():
    gold, pred = read_documents(GOLD), read_documents(PRED)
    a = evaluate(gold, pred, bootstrap=300, seed=7)["bootstrap"]
    b = evaluate(gold, pred, bootstrap=300, seed=7)["bootstrap"]
    assert a == b
    assert a["rounds"] == 300 and a["confidence"] == 95
    assert 0.0 <= a["f1_low"] <= a["f1_high"] <= 100.0
    # perfect predictions: every resample scores 100
    same = evaluate(gold, gold, bootstrap=50)["bootstrap"]
    assert same["f1_low"] == same["f1_high"] == 100.0
    with pytest.raises(InputError):
        evaluate(gold, pred, bootstrap=-1)


def test_format_report_mentions_everything():
    r = evaluate(read_documents(GOLD), read_documents(PRED), bootstrap=20)
    out = format_report(r, "G", "P")
    for s in ("micro", "66.67", "57.14", "61.54", "Disease", "gold nested (recall)",
              "pred flat (precision)", "bootstrap", "without a prediction", "'zz'"):
        assert s in out


# -- reader ---------------------------------------------------------------------------------
def test_reader_errors(tmp_path):
    with pytest.raises(FormatError) as ei:
        read_documents(FIX / "bad_line.jsonl")
    assert ei.value.line == 2 and str(ei.value).startswith(f"{FIX / 'bad_line.jsonl'}:2: ")
    with pytest.raises(InputError, match="no such file"):
        read_documents(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="empty"):
        read_documents(empty)
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\x00\x01\x02")
    with pytest.raises(InputError, match="binary"):
        read_documents(binary)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "abc", "entities": []}\n\n'
                   '{"id": "b", "text": "abc", "entities": [{"start": 0, "end": 9, "type": "A"}]}\n')
    with pytest.raises(FormatError, match=r"bad.jsonl:3: .*outside the text"):
        read_documents(bad)
    bad.write_text('{"id": "a", "text": "abc", "entities": [{"end": 1, "type": "A"}]}\n')
    with pytest.raises(FormatError, match=r":1: .*missing key 'start'"):
        read_documents(bad)
    bad.write_text('[1, 2]\n')
    with pytest.raises(FormatError, match=r":1: "):
        read_documents(bad)


# -- CLI end to end -------------------------------------------------------------------------
def run_cli(*args, cwd=None):
    env = dict(os.environ)
    env.pop("BIOTAG_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "biotag.runtime.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_cli_json():
    p = run_cli("eval", "--gold", GOLD, "--pred", PRED, "--json", "--bootstrap", "50")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert {"documents", "micro", "per_type", "nested", "bootstrap", "files"} <= set(r)
    check_fixture_result(r)
    assert r["bootstrap"]["rounds"] == 50


def test_cli_table_and_types():
    p = run_cli("eval", "--gold", GOLD, "--pred", PRED, "--types", "Disease", "Anatomy")
    assert p.returncode == 0, p.stderr
    assert "micro" in p.stdout and "Disease" in p.stdout and "Chemical" not in p.stdout
    assert "gold nested (recall)" in p.stdout


def test_cli_malformed_line_is_one_line_error():
    p = run_cli("eval", "--gold", GOLD, "--pred", FIX / "bad_line.jsonl")
    assert p.returncode != 0
    err = p.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith("biotag: error: ") and "bad_line.jsonl:2:" in err


def test_cli_text_mismatch_and_missing_file(tmp_path):
    p = run_cli("eval", "--gold", GOLD, "--pred", FIX / "pred_text_mismatch.jsonl")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "text differs" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = run_cli("eval", "--gold", tmp_path / "missing.jsonl", "--pred", PRED)
    assert p.returncode != 0 and "no such file" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("eval", "--gold", GOLD, "--pred", PRED, "--bootstrap", "-3")
    assert p.returncode != 0 and "Traceback" not in p.stderr


# -- properties -----------------------------------------------------------------------------
TYPES = ["Disease", "Chemical", "Anatomy"]


@st.composite
def corpus(draw, texts=None):
    n_docs = len(texts) if texts else draw(st.integers(1, 4))
    docs = []
    for i in range(n_docs):
        text = texts[i] if texts else draw(st.text(min_size=1, max_size=30))
        d = Document(f"d{i}", text)
        for _ in range(draw(st.integers(0, 6))):
            s = draw(st.integers(0, len(text) - 1))
            e = draw(st.integers(s + 1, len(text)))
            d.add(s, e, draw(st.sampled_from(TYPES)))
        docs.append(d)
    return docs


@settings(max_examples=60, deadline=None)
@given(corpus())
def test_self_evaluation_is_perfect(x):
    r = evaluate(x, x)
    if any(d.entities for d in x):
        assert r["micro"]["f1"] == 100.0
        assert r["micro"]["precision"] == r["micro"]["recall"] == 100.0
        assert all(m["f1"] == 100.0 for m in r["per_type"].values())
    assert r["micro"]["fp"] == r["micro"]["fn"] == 0


def _all_scores(r):
    yield from (r["micro"][k] for k in ("precision", "recall", "f1"))
    for m in r["per_type"].values():
        yield from (m[k] for k in ("precision", "recall", "f1"))
    for m in r["nested"].values():
        yield from (v for k, v in m.items() if k in ("precision", "recall"))
    if r["bootstrap"]:
        yield r["bootstrap"]["f1_low"]
        yield r["bootstrap"]["f1_high"]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_scores_always_in_range(data):
    gold = data.draw(corpus())
    texts = [d.text for d in gold]
    pred = data.draw(corpus(texts=texts))
    pred = data.draw(st.lists(st.sampled_from(pred), unique_by=lambda d: d.id)) if pred else pred
    r = evaluate(gold, pred, bootstrap=data.draw(st.sampled_from([0, 5])))
    for v in _all_scores(r):
        assert 0.0 <= v <= 100.0
    m = r["micro"]
    assert m["tp"] + m["fn"] == sum(len({e.key for e in d.entities}) for d in gold)


def _doc(i, text, spans):
    return Document(id=i, text=text, entities=tuple(Entity(a, b, t) for a, b, t in spans))


def test_paired_bootstrap_delta_and_interval():
    from biotag.runtime.evaluate import paired_bootstrap

    gold = [_doc(f"d{i}", "aspirin and asthma", [(0, 7, "Chemical"), (12, 18, "Disease")]) for i in range(30)]
    worse = [_doc(f"d{i}", "aspirin and asthma", [(0, 7, "Chemical")] if i % 2 else [(0, 6, "Chemical")])
             for i in range(30)]
    r = paired_bootstrap(gold, worse, gold, rounds=400, seed=3)
    assert r["f1_b"] == pytest.approx(100.0)
    assert r["f1_a"] == pytest.approx(evaluate(gold, worse)["micro"]["f1"])
    assert r["delta"] == pytest.approx(r["f1_b"] - r["f1_a"])
    assert 0 < r["low"] <= r["delta"] <= r["high"]
    assert r["b_better"] == 1.0
    # the same system against itself: no difference in any resample
    same = paired_bootstrap(gold, worse, worse, rounds=50)
    assert same["delta"] == same["low"] == same["high"] == 0.0 and same["b_better"] == 0.0
    # seeded
    assert paired_bootstrap(gold, worse, gold, rounds=100, seed=1) == paired_bootstrap(gold, worse, gold, rounds=100, seed=1)
    with pytest.raises(InputError):
        paired_bootstrap(gold, worse, gold, rounds=0)


def test_paired_bootstrap_refuses_a_prediction_with_other_text():
    from biotag.runtime.evaluate import paired_bootstrap

    gold = [_doc("d0", "aspirin and asthma", [(0, 7, "Chemical")])]
    other = [_doc("d0", "aspirin and asthmA", [(0, 7, "Chemical")])]
    with pytest.raises(InputError, match="differs from the gold text"):
        paired_bootstrap(gold, gold, other, rounds=10)
