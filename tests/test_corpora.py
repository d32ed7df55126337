"""Corpus readers: exact offsets, repairs counted, malformed input -> FormatError(file:line), and
(marked ``data``) the statistics of every corpus in ../shared/data against its README/counts.json."""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest

from biotag.runtime import corpora as C
from biotag.runtime.document import Document, Entity
from biotag.runtime.errors import FormatError, InputError

FIX = Path(__file__).resolve().parent / "fixtures" / "corpora"
DATA_DIR = Path(os.environ.get("BIOTAG_DATA_DIR")
                or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def read(name, fmt, **kw):
    rep = C.ReadReport()
    docs = list(C.read_file(FIX / name, fmt, split="t", report=rep, **kw))
    for d in docs:  # the data-model invariant, checked explicitly
        for e in d.entities:
            assert d.text[e.start:e.end] == e.text
    return docs, rep


def keys(doc):
    return [(e.start, e.end, e.type, e.text) for e in doc.sorted_entities()]


# -- readers -----------------------------------------------------------------------------------
def test_iob_tsv_tokens_joined_by_spaces():
    docs, rep = read("iob.tsv", "iob-tsv", corpus="bc5cdr")
    assert [d.text for d in docs] == ["Familial breast cancer is rare .",
                                      "Aspirin causes ulcers and BRCA1-associated tumours"]
    assert keys(docs[0]) == [(0, 22, "Disease", "Familial breast cancer")]
    assert keys(docs[1]) == [(0, 7, "Chemical", "Aspirin"), (15, 21, "Disease", "ulcers"),
                             (26, 50, "Disease", "BRCA1-associated tumours")]
    assert [d.id for d in docs] == ["bc5cdr/t/0", "bc5cdr/t/1"]
    assert docs[0].lang == "en" and docs[0].meta == {"corpus": "bc5cdr", "split": "t", "line": 1}
    assert docs[1].meta["line"] == 8
    assert docs[1].entities[0].meta["orig_type"] == "Chemical"
    # I-Disease after O starts a mention (README rule), counted but not a repair
    assert rep.mentions == 4 and rep.counters["bio_i_start"] == 1 and rep.repaired == 0
    assert rep.counters["tokens"] == 12


def test_s800_bare_tags_are_species():
    docs, rep = read("s800.tsv", "iob-tsv", corpus="s800", bare_type="Species")
    assert keys(docs[0]) == [(0, 23, "Species", "Methanoregula formicica")]
    assert keys(docs[1]) == [(0, 7, "Species", "E. coli")]
    assert rep.types == {"Species": 2}
    with pytest.raises(FormatError, match=r"s800\.tsv:1: untyped tag"):
        list(C.read_file(FIX / "s800.tsv", "iob-tsv"))


def test_conll_skips_docstart():
    docs, rep = read("conll.conll", "conll", corpus="conll2003")
    assert [d.text for d in docs] == ["EU rejects German call", "Peter Blackburn"]
    assert keys(docs[0]) == [(0, 2, "Organization", "EU"), (11, 17, "Misc", "German")]
    assert docs[0].entities[0].meta["orig_type"] == "ORG"
    assert keys(docs[1]) == [(0, 15, "Person", "Peter Blackburn")]
    assert rep.counters["docstart"] == 2 and rep.mentions == 3


def test_brat_discontinuous_other_lines_and_repairs():
    docs, rep = read("brat", "brat", corpus="jnlpba")
    d1, d2 = docs
    assert d1.id == "jnlpba/t/d1" and d2.id == "jnlpba/t/d2" and d2.entities == []
    assert keys(d1) == [(14, 49, "Protein", "IL-2 receptor alpha and beta chains"),
                        (14, 27, "Protein", "IL-2 receptor"), (53, 60, "CellType", "T cells"),
                        (62, 74, "CellLine", "Human Jurkat")]
    disc = d1.sorted_entities()[0]
    assert disc.meta["discontinuous"] is True and disc.meta["fragments"] == [[14, 33], [38, 49]]
    case = d1.sorted_entities()[3]
    assert case.meta["repair"] == "case" and case.meta["mention"] == "human Jurkat"
    assert rep.mentions == 5 and rep.repaired == 1 and rep.dropped == 1
    assert rep.counters["offset_mismatch_not_found"] == 1
    assert rep.counters["brat_other_lines"] == 2 and rep.counters["discontinuous"] == 1
    assert [(s.start, s.end) for s in d1.segments] == [(0, 61), (62, 91)]
    assert any("d1.ann:7" in ex for ex in rep.examples)


def test_brat_errors(tmp_path):
    with pytest.raises(InputError, match="no .txt files"):
        list(C.read_brat(tmp_path))
    (tmp_path / "a.txt").write_text("Some text.\n")
    (tmp_path / "a.ann").write_text("T1\tprotein 0 4\tSome\nT2\tprotein zero 4\tSome\n")
    with pytest.raises(FormatError, match=r"a\.ann:2: T2: bad offsets"):
        list(C.read_brat(tmp_path))


def test_genia_nested_same_span_and_space_token():
    docs, rep = read("genia.jsonl", "genia-jsonl", corpus="genia")
    assert docs[0].text == "Here we report the cloning of murine TCF-1 ."
    assert keys(docs[0]) == [(30, 42, "Protein", "murine TCF-1"), (37, 42, "Protein", "TCF-1")]
    assert docs[1].text == "leucocytic ER- cells express GR mRNA"
    assert (0, 20, "CellType", "leucocytic ER- cells") in keys(docs[1])
    assert len(docs[0].nested_pairs()) == 1 and len(docs[1].nested_pairs()) == 2
    assert docs[0].meta["sent_id"] == "MEDLINE:1-1" and docs[2].entities == []
    st = C.doc_stats(docs, rep)
    assert st["nested_pairs"] == 3 and st["same_span_pairs"] == 1 and st["documents"] == 2
    assert rep.counters["tokens_containing_space"] == 1


def test_cmeee_json_end_inclusive_keeps_feff():
    docs, rep = read("cmeee.json", "cmeee-json", corpus="cmeee")
    assert docs[0].lang == "zh"
    assert keys(docs[0]) == [(0, 7, "Symptom", "听诊可闻湿啰音"), (0, 2, "Procedure", "听诊")]
    assert docs[1].text.startswith("\ufeff")
    assert keys(docs[1]) == [(1, 6, "Symptom", "右下腹疼痛"), (1, 4, "Anatomy", "右下腹")]
    assert docs[2].entities == [] and docs[2].meta["line"] > docs[1].meta["line"] > 1
    assert rep.mentions == 4 and rep.repaired == rep.dropped == 0


def test_cmeee_json_bad_record_names_its_line(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('[\n  {"text": "ab", "entities": []},\n  {"text": "cd", "entities": [{"type": "dis", '
                 '"start_idx": "x", "end_idx": 1}]}\n]\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"x\.json:3: 'start_idx' must be an integer"):
        list(C.read_cmeee_json(p))
    p.write_text('[\n  {"text": "ab", "entities": []},\n  {"text": "cd" "entities": []}\n]\n')
    with pytest.raises(FormatError, match=r"x\.json:3: invalid JSON"):
        list(C.read_cmeee_json(p))


def test_char_bio_repairs_flattened_nesting():
    docs, rep = read("flat.bio", "char-bio", corpus="cmeee")
    assert [d.text for d in docs] == ["腹部疼痛", "疼痛伴腹部不适", "\ufeff发热", "左手右手麻"]
    # B-bod I-bod I-sym I-sym -> sym extended back over the bod
    assert keys(docs[0]) == [(0, 4, "Symptom", "腹部疼痛"), (0, 2, "Anatomy", "腹部")]
    assert docs[0].sorted_entities()[0].meta["repair"] == "extended"
    # B-sym I-sym I-sym B-bod I-bod I-sym I-sym -> one sym over everything, bod inside
    assert keys(docs[1]) == [(0, 7, "Symptom", "疼痛伴腹部不适"), (3, 5, "Anatomy", "腹部")]
    assert docs[1].sorted_entities()[0].meta["repair"] == "merged"
    assert keys(docs[2]) == [(1, 3, "Symptom", "发热")]
    assert keys(docs[3]) == [(0, 5, "Symptom", "左手右手麻"), (0, 2, "Anatomy", "左手"),
                             (2, 4, "Anatomy", "右手")]
    # README rule: every I-sym run counts as a mention; three were repaired (2 extended, 1 merged)
    assert rep.mentions == 9 and rep.repaired == 3
    assert rep.counters["bio_continuation_extended"] == 2
    assert rep.counters["bio_continuation_merged"] == 1
    assert sum(len(d.entities) for d in docs) == 8
    # without repair: the runs stay mentions of their own, starting too late
    raw = list(C.read_char_bio(FIX / "flat.bio", corpus="cmeee", continuation="new"))
    assert keys(raw[0]) == [(0, 2, "Anatomy", "腹部"), (2, 4, "Symptom", "疼痛")]
    assert sum(len(d.entities) for d in raw) == 9


def test_char_bio_feff_as_first_character():
    docs, _ = read("feff_first.bio", "char-bio", corpus="cmeee")
    assert docs[0].text == "\ufeff热" and keys(docs[0]) == [(1, 2, "Symptom", "热")]


def test_chineseblue_offset_repairs_and_drops():
    docs, rep = read("cmedqaner.jsonl", "chineseblue-jsonl", corpus="cmedqaner")
    assert len(docs) == 4
    assert keys(docs[0]) == [(0, 2, "Anatomy", "阴径")]          # int offset
    assert keys(docs[1]) == [(1, 3, "Anatomy", "脚背")]          # str offset
    tct, cervix = docs[2].sorted_entities()
    assert (tct.start, tct.end, tct.text) == (2, 5, "tct") and tct.meta["repair"] == "case"
    assert tct.meta["mention"] == "TCT" and tct.meta["orig_type"] == "test"
    assert (cervix.start, cervix.end) == (8, 11) and cervix.meta["repair"] == "moved"
    assert cervix.meta["guid"] == "g1"
    assert docs[3].entities == []                              # ambiguous + not found: dropped
    assert rep.mentions == 6 and rep.repaired == 2 and rep.dropped == 2
    assert rep.counters["integer_offsets"] == 1
    assert rep.counters["offset_mismatch_ambiguous"] == 1
    assert rep.counters["offset_mismatch_not_found"] == 1
    assert any("cmedqaner.jsonl:3" in ex for ex in rep.examples)


def test_cehrner_label_key():
    docs, rep = read("cehrner.jsonl", "chineseblue-jsonl", corpus="cehrner")
    assert keys(docs[0]) == [(3, 5, "Disease", "胃癌"), (6, 10, "Procedure", "胃切除术"),
                             (6, 7, "Anatomy", "胃")]
    assert docs[0].entities[0].meta["orig_type"] == "疾病和诊断"
    assert rep.types["手术"] == 1


def test_pubtator_title_space_abstract():
    docs, rep = read("pubtator.txt", "pubtator", corpus="bc5cdr")
    d = docs[0]
    assert d.id == "bc5cdr/t/100" and d.meta["pmid"] == "100"
    assert d.text == "Lithium toxicity in a newborn. Ocular and auditory toxicity followed lithium."
    assert keys(d) == [(0, 7, "Chemical", "Lithium"), (8, 16, "Disease", "toxicity"),
                       (31, 59, "Disease", "Ocular and auditory toxicity"),
                       (69, 76, "Chemical", "lithium")]
    assert d.sorted_entities()[2].meta["id"] == "D014786|D006311"
    assert [(s.start, s.end) for s in d.segments] == [(0, 30), (31, 77)]
    assert keys(docs[1]) == [(12, 19, "Chemical", "Cocaine")]
    assert rep.counters["relations"] == 1 and rep.counters["composite_mentions"] == 1
    assert rep.repaired == 1 and rep.mentions == 5


@pytest.mark.parametrize("name,fmt,where", [
    ("bad_fields.tsv", "iob-tsv", "bad_fields.tsv:3:"),
    ("bad_tag.tsv", "iob-tsv", "bad_tag.tsv:3:"),
    ("bad.conll", "conll", "bad.conll:2:"),
    ("bad.jsonl", "genia-jsonl", "bad.jsonl:2:"),
    ("bad.bio", "char-bio", "bad.bio:2:"),
    ("bad_cehrner.jsonl", "chineseblue-jsonl", "bad_cehrner.jsonl:2:"),
    ("bad_pubtator.txt", "pubtator", "bad_pubtator.txt:3:"),
])
def test_malformed_line_raises_format_error_with_file_line(name, fmt, where):
    with pytest.raises(FormatError) as exc:
        list(C.read_file(FIX / name, fmt))
    assert where in str(exc.value)
    assert exc.value.line == int(where.rsplit(":", 2)[-2])
    assert exc.value.exit_code == 2


@pytest.mark.parametrize("fmt", ["iob-tsv", "conll", "char-bio", "genia-jsonl", "cmeee-json",
                                 "chineseblue-jsonl", "pubtator"])
def test_empty_file_is_an_input_error(fmt):
    for name in ("empty.tsv", "blank.tsv"):
        with pytest.raises(InputError, match="empty"):
            list(C.read_file(FIX / name, fmt))


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(C.read_file(tmp_path / "nope.tsv", "iob-tsv"))
    with pytest.raises(InputError, match="unknown corpus format"):
        C.read_file(tmp_path / "nope.tsv", "xml")


# -- statistics and word boundaries -----------------------------------------------------------
def test_doc_stats_counts_nested_and_crossing():
    d = Document("x", "abcdefgh", [Entity(0, 4, "A"), Entity(1, 3, "B"), Entity(2, 6, "C"),
                                   Entity(0, 4, "D")])
    st = C.doc_stats([d, Document("y", "zz")], unit="sentences")
    assert st["units"] == 2 and st["mentions"] == st["mentions_kept"] == 4
    assert st["nested_pairs"] == 2 and st["crossing_pairs"] == 3 and st["same_span_pairs"] == 1


def test_word_boundary_report():
    docs = [Document("a", "BRCA1-associated tumours and IL2", [
        Entity(0, 5, "Gene"),          # BRCA1: aligned
        Entity(0, 4, "Gene"),          # BRCA: ends inside the word BRCA1
        Entity(29, 31, "Protein"),     # IL of IL2: ends inside a word (letter|digit)
        Entity(16, 24, "Disease"),     # " tumours" starts on whitespace
    ]), Document("b", "右下腹疼痛", [Entity(0, 3, "Anatomy")])]
    rep = C.word_boundary_report(docs)
    assert rep["entities"] == 5 and rep["aligned"] == 2 and rep["share"] == pytest.approx(0.4)
    assert rep["causes"]["end inside word (letter|digit)"] == 2
    assert rep["causes"]["start on whitespace"] == 1
    assert rep["start_aligned"] == 4 and rep["end_aligned"] == 3
    assert "[IL]2" in rep["examples"]["end inside word (letter|digit)"][1]


# -- registry and CLI -------------------------------------------------------------------------
def test_registry_names_and_labels():
    names = [s.name for s in C.iter_corpora()]
    for n in ["ncbi-disease", "bc5cdr", "bc5cdr-pubtator", "bc2gm", "jnlpba", "linnaeus", "s800",
              "genia", "cmeee", "cmeee-flat", "cmedqaner", "cehrner", "conll2003", "anatem",
              "bionlp09", "bionlp11epi", "bionlp11id", "bionlp13cg", "bionlp13ge", "bionlp13pc",
              "ex-ptm"]:
        assert n in names
    assert C.get_corpus("extra/anatem").folder == "extra/anatem"
    assert C.CORPORA["cmeee"].splits == {"train": "train_nested.json", "test": "test.json"}
    assert C.CORPORA["cmeee-flat"].splits == {"train": "train_flat.bio"}
    assert C.canonical_type("bionlp13cg", "Organism") == "Species"
    assert C.canonical_type("bionlp13cg", "Tissue") == "Tissue"    # unknown: passed through
    assert C.canonical_type("s800", "Species") == "Species"
    with pytest.raises(InputError, match="unknown corpus"):
        C.get_corpus("nope")
    with pytest.raises(InputError, match="no split 'dev'"):
        C.CORPORA["cmeee"].path("dev", FIX)


@pytest.fixture
def mini_data(tmp_path):
    (tmp_path / "ncbi-disease").mkdir()
    shutil.copy(FIX / "iob.tsv", tmp_path / "ncbi-disease" / "train.tsv")
    (tmp_path / "cmedqaner").mkdir()
    shutil.copy(FIX / "cmedqaner.jsonl", tmp_path / "cmedqaner" / "train.jsonl")
    (tmp_path / "extra" / "newcorp").mkdir(parents=True)
    shutil.copy(FIX / "s800.tsv", tmp_path / "extra" / "newcorp" / "dev.tsv")
    return tmp_path


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="biotag")
    C.add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_load_and_discover_extra(mini_data):
    docs = C.load("ncbi-disease", "train", mini_data)
    assert len(docs) == 2 and docs[0].id == "ncbi-disease/train/0"
    assert docs[0].meta["corpus"] == "ncbi-disease" and docs[0].meta["split"] == "train"
    with pytest.raises(InputError, match="is missing"):
        C.load("ncbi-disease", "dev", mini_data)
    extra = {s.name: s for s in C.iter_corpora(mini_data)}["newcorp"]
    assert extra.splits == {"dev": "dev.tsv"} and extra.folder == "extra/newcorp"


def test_cli_stats_and_words_json(mini_data, capsys):
    assert run_cli(["data", "stats", "--data-dir", str(mini_data), "--json",
                    "--corpus", "ncbi-disease", "cmedqaner", "--split", "train"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(s["corpus"], s["split"]) for s in out] == [("ncbi-disease", "train"),
                                                        ("cmedqaner", "train")]
    q = out[1]
    assert q["units"] == 4 and q["mentions"] == 6 and q["mentions_kept"] == 4
    assert q["repaired"] == 2 and q["dropped"] == 2 and q["types"]["body"] == 2
    assert run_cli(["data", "words", "--data-dir", str(mini_data), "--json",
                    "--corpus", "cmedqaner", "--split", "train"]) == 0
    w = json.loads(capsys.readouterr().out)
    # CJK characters are words of their own and 'tct' is a whole Latin run: all aligned
    assert w[0]["entities"] == 4 and w[0]["aligned"] == 4 and w[0]["share"] == 1.0
    assert run_cli(["data", "stats", "--data-dir", str(mini_data), "--corpus", "cmedqaner",
                    "--split", "train"]) == 0
    assert "cmedqaner" in capsys.readouterr().out


def test_cli_missing_data_dir(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_cli(["data", "stats", "--data-dir", str(tmp_path / "none")])


# -- the real corpora -------------------------------------------------------------------------
COUNTS_KEY = {"bc5cdr-pubtator": "bc5cdr/pubtator", "cmeee-flat": "cmeee"}
SPLIT_KEY = {("cmeee", "train"): "train_nested", ("cmeee-flat", "train"): "train_flat"}
# README/counts.json count nested pairs over the raw cMedQANER offsets; the reader drops the 5
# ambiguous mentions of train line 367 (offsets shifted by one, mention occurring several times),
# 4 of which are the outer mention of a nested pair ('颞颌关节' around '关节').
NESTED_ADJUST = {("cmedqaner", "train"): -4}
# the clinical corpora are counted in counts_clinical.json (tests/test_clinical_corpora.py)
CASES = [(s.name, split) for s in C.CORPORA.values() for split in s.splits if s.name not in C.CLINICAL]


@pytest.fixture(scope="module")
def real_stats():
    if not (DATA_DIR / "counts.json").is_file():
        pytest.skip(f"corpora not found at {DATA_DIR} (set BIOTAG_DATA_DIR to the shared/data folder)")
    counts = json.loads((DATA_DIR / "counts.json").read_text(encoding="utf-8"))
    return counts, {}


@pytest.mark.data
@pytest.mark.parametrize("name,split", CASES)
def test_real_corpus_matches_readme_counts(real_stats, name, split):
    counts, cache = real_stats
    spec = C.CORPORA[name]
    st = C.corpus_stats(name, split, DATA_DIR)
    cache[(name, split)] = st
    key = COUNTS_KEY.get(name, f"extra/{name}" if spec.extra else name)
    want = counts[key][SPLIT_KEY.get((name, split), split)]
    assert st["units"] == want[spec.unit]
    assert st["mentions"] == want["mentions"]
    assert st["types"] == want["types"]
    if "tokens" in want:
        assert st["counters"]["tokens"] == want["tokens"]
    if "documents" in want and spec.unit != "documents":
        assert st["documents"] == want["documents"]
    if "nested_pairs" in want:
        assert st["nested_pairs"] == want["nested_pairs"] + NESTED_ADJUST.get((name, split), 0)
    if "crossing_pairs" in want:
        assert st["crossing_pairs"] == want["crossing_pairs"]
    if "same_span_pairs" in want:
        assert st["same_span_pairs"] == want["same_span_pairs"]
    if "docstart_markers" in want:
        assert st["counters"]["docstart"] == want["docstart_markers"]
    if "CID_relations" in want:
        assert st["counters"]["relations"] == want["CID_relations"]
    c = st["counters"]
    if "offset_mismatches" in want:
        mismatches = sum(c.get(k, 0) for k in ("offset_mismatch_case", "offset_mismatch_moved",
                                              "offset_mismatch_ambiguous", "offset_mismatch_not_found"))
        assert mismatches == want["offset_mismatches"]
        assert st["repaired"] + st["dropped"] == want["offset_mismatches"]
    if "offset_mismatches_case_only" in want:
        assert c.get("offset_mismatch_case", 0) == want["offset_mismatches_case_only"]
    if "integer_offsets" in want:
        assert c.get("integer_offsets", 0) == want["integer_offsets"]
    if "mentions_starting_with_I" in want:
        runs = c.get("bio_continuation_extended", 0) + c.get("bio_continuation_merged", 0)
        assert runs == want["mentions_starting_with_I"] == st["repaired"]
        assert st["mentions_kept"] == want["mentions"] - c["bio_continuation_merged"]
        assert st["crossing_pairs"] == 0
    else:
        assert st["mentions_kept"] == want["mentions"] - st["dropped"]
    if name == "cmedqaner" and split == "train":
        assert (st["repaired"], st["dropped"]) == (77, 5)


@pytest.mark.data
def test_real_corpus_readme_table_spot_checks(real_stats):
    """A few numbers straight from the README table (not from counts.json)."""
    _, cache = real_stats
    get = lambda n, s: cache.get((n, s)) or C.corpus_stats(n, s, DATA_DIR)  # noqa: E731
    assert (get("jnlpba", "test")["units"], get("jnlpba", "test")["mentions"]) == (404, 8662)
    assert get("bc5cdr-pubtator", "dev")["mentions"] == 9591
    assert get("cmeee-flat", "train")["units"] == 15000
    assert get("cmeee-flat", "train")["mentions"] == 83199
    assert get("genia", "train")["nested_pairs"] == 4481
