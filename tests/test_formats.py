"""Document formats: exact round trips for every format, real-file layouts, and clear one-line
errors for bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from biotag.runtime.cli import main
from biotag.runtime.document import Document, Entity
from biotag.runtime.errors import FormatError, InputError
from biotag.runtime.formats import (FORMATS, get_format, guess_format, read_documents,
                                    write_documents)
from biotag.runtime.formats import bioc_, brat, conll, csv_, jsonl, pubtator

FIX = Path(__file__).parent / "fixtures" / "formats"
BC5CDR = Path(__file__).resolve().parents[2] / "shared" / "data" / "bc5cdr" / "pubtator"
SCORED = {"jsonl", "brat", "bioc-xml", "bioc-json", "pubtator", "csv"}
WITH_LANG = {"jsonl", "bioc-xml", "bioc-json", "conll", "csv"}


# -- sample documents ---------------------------------------------------------------------------
def _doc(doc_id, text, spans, lang=None):
    d = Document(doc_id, text, lang=lang)
    for frag, typ, *rest in spans:
        k = rest[1] if len(rest) > 1 else 0
        i = -1
        for _ in range(k + 1):
            i = text.index(frag, i + 1)
        d.add(i, i + len(frag), typ, score=rest[0] if rest else None)
    return d


def sample_docs() -> list[Document]:
    nested = _doc("nested", "Left lower lobe pneumonia was treated.", [
        ("Left lower lobe pneumonia", "Disease", 0.91),      # layer 1
        ("Left lower lobe", "Anatomy", 0.5),                 # layer 2
        ("lower lobe", "Anatomy"),                           # layer 3
        ("lobe", "Anatomy", 0.25),                           # 4 deep, to be sure
        ("pneumonia", "Disease"),
    ], lang="en")
    overlap = _doc("overlap", "Breast cancer cell lines were used.", [
        ("Breast cancer", "Disease", 1.0),
        ("cancer cell lines", "CellLine", 0.0),              # crosses the Disease span
        ("Breast cancer", "Anatomy"),                        # same span, other type
    ])
    chinese = _doc("zh-1", "患者右下腹疼痛三天，伴发热。", [
        ("右下腹疼痛", "Symptom", 0.8), ("右下腹", "Anatomy"), ("发热", "Symptom")], lang="zh")
    emoji = _doc("emoji", "😀 Fever 🤒 and 𠀀 rash", [
        ("Fever", "Symptom", 0.7), ("🤒", "Symptom"), ("𠀀 rash", "Symptom"), ("😀", "Misc")])
    crlf = _doc("crlf", "Heart\r\nattack\r\n\tand\tstroke \r\n", [
        ("Heart\r\nattack", "Disease", 0.6), ("stroke", "Disease"), ("attack", "Disease"),
        ("\tand", "Misc"), ("\r\n", "Misc", None, 2)])
    tabs = _doc("tabs", "a\tb\t\tc  d", [("a\tb", "X"), ("c  d", "Y", 0.125)])
    empty = Document("empty", "")
    return [nested, overlap, chinese, emoji, crlf, tabs, empty]


def pubtator_docs() -> list[Document]:
    """PubTator holds a title line and an abstract line: one line feed at most, no CR."""
    return [
        _doc("1001", "Left lower lobe pneumonia.\nBreast cancer cell lines\twere used.", [
            ("Left lower lobe pneumonia", "Disease", 0.91), ("Left lower lobe", "Anatomy"),
            ("lower lobe", "Anatomy", 0.5), ("Breast cancer", "Disease"),
            ("cancer cell lines", "CellLine"), ("pneumonia.\nBreast", "Misc", 0.3),
            ("lines\twere", "Misc")]),
        _doc("zh", "患者右下腹疼痛 😀|x\n伴发热 𠀀。", [("右下腹疼痛", "Symptom"), ("😀|x", "Misc", 0.2),
                                               ("发热", "Symptom")]),
        _doc("title-only", "Only a title with 🤒 emoji", [("🤒", "Symptom", 0.1)]),
        _doc("trailing-lf", "Title\n", [("Title", "X")]),
        Document("empty", ""),
    ]


def keys(doc):
    return sorted(e.key for e in doc.entities)


def scores(doc):
    return sorted((e.key, -1.0 if e.score is None else e.score) for e in doc.entities)


def assert_same(a: list[Document], b: list[Document], fmt: str, ordered: bool = True):
    assert len(a) == len(b)
    if not ordered:
        a, b = sorted(a, key=lambda d: d.id), sorted(b, key=lambda d: d.id)
    for x, y in zip(a, b):
        assert y.id == x.id, fmt
        assert y.text == x.text, (fmt, x.id)
        assert keys(y) == keys(x), (fmt, x.id)
        for e in y.entities:
            assert e.text == y.text[e.start:e.end]
        if fmt in SCORED:
            assert scores(y) == scores(x), (fmt, x.id)
        if fmt in WITH_LANG:
            assert y.lang == x.lang, (fmt, x.id)


def out_path(tmp: Path, fmt: str) -> Path:
    return tmp / {"brat": "out_brat", "bioc-xml": "out.xml", "bioc-json": "out.json",
                  "pubtator": "out.pubtator", "conll": "out.conll", "csv": "out.csv",
                  "jsonl": "out.jsonl"}[fmt]


# -- round trips ------------------------------------------------------------------------------
def test_sample_docs_are_what_the_tests_claim():
    docs = {d.id: d for d in sample_docs()}
    n = docs["nested"]
    by = {e.text: e for e in n.entities}
    chain = [by[t] for t in ("Left lower lobe pneumonia", "Left lower lobe", "lower lobe", "lobe")]
    assert chain[0].contains(chain[1]) and chain[1].contains(chain[2]) and chain[2].contains(chain[3])
    assert docs["overlap"].crossing_pairs()
    e = docs["emoji"]
    assert [x.text for x in e.entities if x.type == "Misc"] == ["😀"]
    assert any(x.end - x.start == 1 and len(x.text.encode("utf-16-le")) == 4 for x in e.entities)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "pubtator"])
def test_round_trip(tmp_path, fmt):
    docs = sample_docs()
    path = out_path(tmp_path, fmt)
    write_documents(docs, path, fmt)
    back = read_documents(path, fmt)
    assert_same(docs, back, fmt, ordered=fmt != "brat")
    # and a second trip gives the same again (guessing the format from the name)
    path2 = tmp_path / ("again_" + path.name)
    write_documents(back, path2)
    assert_same(docs, read_documents(path2), fmt, ordered=fmt != "brat")


def test_round_trip_pubtator(tmp_path):
    docs = pubtator_docs()
    path = tmp_path / "x.pubtator"
    write_documents(docs, path, "pubtator")
    assert_same(docs, read_documents(path, "pubtator"), "pubtator")
    text = path.read_text(encoding="utf-8")
    assert "1001|t|Left lower lobe pneumonia.\n1001|a|Breast cancer" in text
    assert "title-only|a|" not in text
    assert "trailing-lf|a|\n" in text
    # offsets run over title + " " + abstract: the mention crossing the break shows a space
    assert "\tpneumonia. Breast\tMisc\t0.3\n" in text


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_carries_the_pubtator_docs(tmp_path, fmt):
    docs = pubtator_docs()
    path = out_path(tmp_path, fmt)
    write_documents(docs, path, fmt)
    assert_same(docs, read_documents(path, fmt), fmt, ordered=fmt != "brat")


@pytest.mark.parametrize("text, why", [("a\r\nb", "carriage return"), ("a\nb\nc", "3 lines")])
def test_pubtator_refuses_texts_it_cannot_hold(tmp_path, text, why):
    out = tmp_path / "x.pubtator"
    out.write_text("old content\n")
    with pytest.raises(FormatError, match=why):
        write_documents([Document("d", text)], out, "pubtator")
    assert out.read_text() == "old content\n"  # nothing half-written
    with pytest.raises(FormatError, match="cannot be written"):
        write_documents([Document("a|b", "x")], out, "pubtator")


def test_crlf_is_kept_exactly_on_disk(tmp_path):
    docs = [d for d in sample_docs() if d.id == "crlf"]
    write_documents(docs, tmp_path / "b", "brat")
    assert (tmp_path / "b" / "crlf.txt").read_bytes() == docs[0].text.encode()
    write_documents(docs, tmp_path / "c.csv", "csv")
    assert read_documents(tmp_path / "c.csv")[0].text == docs[0].text


# -- hypothesis: random texts and spans ------------------------------------------------------------
ALPHABET = st.sampled_from(list("abcXYZ019 .,-/|%#\\\"'") + [
    "\t", "\n", "\r", "\r\n", "\x0b", "\u00a0", "\u2028", "\u2029", "\x85", "\u0301", "腹", "痛", "😀",
    "𠀀", "\u200b", "\x01"])
TYPES = st.sampled_from(["Disease", "Chemical", "Gene-or-protein", "B", "O2"])


@st.composite
def random_doc(draw, nul=True):
    text = "".join(draw(st.lists(ALPHABET, max_size=30)))
    if nul and draw(st.booleans()):
        text += "\x00"
    doc = Document(draw(st.text(st.sampled_from(list("ab1/._%: é腹")), min_size=1, max_size=8)),
                   text, lang=draw(st.sampled_from([None, "en", "zh"])))
    if text:
        for _ in range(draw(st.integers(0, 6))):
            a = draw(st.integers(0, len(text) - 1))
            b = draw(st.integers(a + 1, len(text)))
            score = draw(st.one_of(st.none(), st.floats(0, 1)))
            doc.add(a, b, draw(TYPES), score=score)
    return doc


def _unique(docs):
    seen, out = set(), []
    for d in docs:
        if d.id not in seen:
            seen.add(d.id)
            out.append(d)
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(random_doc(), min_size=1, max_size=3))
def test_property_jsonl(docs):
    assert_same(docs, jsonl.loads(jsonl.dumps(docs)), "jsonl")


@settings(max_examples=150, deadline=None)
@given(st.lists(random_doc(), min_size=1, max_size=3))
def test_property_conll(docs):
    assert_same(docs, conll.loads(conll.dumps(docs)), "conll")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(random_doc(nul=False), min_size=1, max_size=3).map(_unique))
def test_property_brat(docs):
    with tempfile.TemporaryDirectory() as tmp:
        write_documents(docs, Path(tmp) / "b", "brat")
        assert_same(docs, read_documents(Path(tmp) / "b", "brat"), "brat", ordered=False)


@settings(max_examples=80, deadline=None)
@given(st.lists(random_doc(nul=False), min_size=1, max_size=3).map(_unique))
def test_property_csv_and_bioc_json(docs):
    assert_same(docs, csv_.loads(csv_.dumps(docs)), "csv")
    assert_same(docs, bioc_.loads_json(bioc_.dumps_json(docs)), "bioc-json")


# -- format details and real layouts ----------------------------------------------------------------
def test_brat_newline_entity_is_written_as_fragments(tmp_path):
    d = Document("n", "Heart\nattack\r\nnow")
    d.add(0, 12, "Disease")
    d.add(0, 17, "Span")
    d.add(5, 12, "Lead")  # begins with the line break
    write_documents([d], tmp_path / "b", "brat")
    ann = (tmp_path / "b" / "n.ann").read_text()
    assert "T2\tDisease 0 5;6 12\tHeart attack\n" in ann
    assert "Span 0 5;6 12;14 17\tHeart attack now" in ann
    assert '"span": [5, 12]' in ann
    back = read_documents(tmp_path / "b", "brat")[0]
    assert keys(back) == keys(d)
    dis = next(e for e in back.entities if e.type == "Disease")
    assert dis.meta["discontinuous"] is True and dis.text == "Heart\nattack"


def test_brat_reads_real_layout():
    docs = read_documents(FIX / "brat")
    assert [d.id for d in docs] == ["note1", "note2"]
    d = docs[0]
    by = {(e.type, e.text): e for e in d.entities}
    chest_pain = by[("Symptom", "chest and back pain")]
    assert chest_pain.meta["discontinuous"] and chest_pain.meta["fragments"] == [[16, 21], [31, 35]]
    assert by[("Symptom", "fever")].meta["attributes"] == {"Negated": True}
    assert by[("Symptom", "back pain")].meta["notes"] == ["checked by annotator"]
    assert by[("Anatomy", "chest")].score == 0.5
    assert docs[1].text == "" and docs[1].entities == []


def test_brat_fragments_survive_a_round_trip(tmp_path):
    docs = read_documents(FIX / "brat")
    write_documents(docs, tmp_path / "b")
    assert "T1\tSymptom 16 21;31 35\tchest pain\n" in (tmp_path / "b" / "note1.ann").read_text()


def test_brat_ids_that_are_not_file_names(tmp_path):
    docs = [Document(i, "x") for i in ("a/b", "..", "100%", ".hidden", "c:d")]
    write_documents(docs, tmp_path / "b", "brat")
    assert all(not p.name.startswith(".") for p in (tmp_path / "b").iterdir())
    assert sorted(d.id for d in read_documents(tmp_path / "b")) == sorted(d.id for d in docs)
    with pytest.raises(FormatError, match="two documents"):
        write_documents([Document("a", "x"), Document("a", "y")], tmp_path / "c", "brat")


def test_conll_layers_and_sentences():
    d = sample_docs()[0]
    text = conll.dumps([d])
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    assert all(len(r) == 3 + 4 for r in rows)  # 4 nesting layers, 4 tag columns
    assert rows[0][:7] == ["Left", "0", "4", "B-Disease", "B-Anatomy", "O", "O"]
    assert rows[2][:7] == ["lobe", "11", "15", "I-Disease", "I-Anatomy", "I-Anatomy", "B-Anatomy"]
    # a line break outside entities starts a new sentence block; one inside an entity does not
    two = Document("t", "Aspirin helps.\nNo fever\n here.")
    two.add(18, 29, "X")  # "fever\n here" spans a line break
    blocks = conll.format_doc(two).strip("\n").split("\n\n")
    assert len(blocks) == 2
    assert conll.loads(conll.dumps([two]))[0].entities[0].key == (18, 29, "X")


def test_conll_entities_off_word_boundaries(tmp_path):
    d = Document("w", "BRCA1-associated  cancers")
    d.add(0, 3, "Gene")          # inside the word BRCA1
    d.add(16, 18, "Space")       # whitespace only
    d.add(2, 25, "Long")
    write_documents([d], tmp_path / "w.conll")
    assert keys(read_documents(tmp_path / "w.conll")[0]) == keys(d)


def test_conll_plain_token_tag_file():
    docs = read_documents(FIX / "plain.conll", "conll")
    assert [d.text for d in docs] == ["Aspirin causes ulcers .\nNo bleeding", "GeneX"]
    assert [(e.text, e.type) for e in docs[0].entities] == [
        ("Aspirin", "Chemical"), ("ulcers", "Disease"), ("bleeding", "Disease")]


def test_pubtator_reads_bc5cdr_layout(tmp_path):
    path = FIX / "sample.pubtator"
    docs = read_documents(path)
    assert [d.id for d in docs] == ["9000001", "9000002"]
    d = docs[0]
    assert d.text.startswith("Drugx-induced renal failure in a patient.\nA 40-year-old")
    comp = next(e for e in d.entities if e.text == "nausea|vomiting")
    assert comp.meta == {"id": "D009325|D014839", "extra": ["nausea|vomiting"]}
    assert next(e for e in d.entities if e.text == "man").meta["id"] == "-1"
    assert d.meta["relations"] == [["CID", "C000001", "D051437"]]
    g1, g2 = sorted(docs[1].entities)
    assert g1.score == 0.875 and g2.score is None and g2.meta["id"] == "12345"
    write_documents(docs, tmp_path / "o.pubtator")
    assert (tmp_path / "o.pubtator").read_text() == path.read_text()


@pytest.mark.data
@pytest.mark.skipif(not BC5CDR.exists(), reason="needs ../shared/data/bc5cdr")
def test_pubtator_real_bc5cdr_is_byte_exact(tmp_path):
    src = BC5CDR / "test.PubTator.txt"
    docs = read_documents(src)
    assert len(docs) == 500 and sum(len(d.entities) for d in docs) > 9000
    write_documents(docs, tmp_path / "o.pubtator")
    assert (tmp_path / "o.pubtator").read_bytes() == src.read_bytes()


def test_bioc_xml_reads_passages_and_locations():
    docs = read_documents(FIX / "two_passages.xml")
    (d,) = docs
    assert d.text == "Lung and liver lesions. Biopsy of the liver showed cirrhosis."
    by = {e.type + ":" + e.text: e for e in d.entities}
    disc = by["Disease:Lung and liver lesions"]
    assert disc.meta["discontinuous"] and disc.meta["fragments"] == [[0, 4], [15, 22]]
    assert by["Disease:cirrhosis"].score == 0.75


def test_bioc_xml_offsets_are_code_points(tmp_path):
    d = Document("e", "😀😀 Fever")
    d.add(3, 8, "Symptom")
    write_documents([d], tmp_path / "e.xml")
    xml = (tmp_path / "e.xml").read_text()
    assert '<location offset="3" length="5"/>' in xml
    assert '<infon key="offsets">code points</infon>' in xml


def test_bioc_xml_refuses_control_characters(tmp_path):
    with pytest.raises(FormatError, match="XML cannot hold"):
        write_documents([Document("c", "a\x01b")], tmp_path / "c.xml")
    write_documents([Document("c", "a\x01b")], tmp_path / "c.json")  # JSON can
    assert read_documents(tmp_path / "c.json")[0].text == "a\x01b"


def test_csv_layout():
    docs = read_documents(FIX / "entities.csv")
    (d,) = docs
    assert d.text == 'Fever, cough\nand "chills".' and d.lang == "en"
    assert [(e.text, e.score, e.source) for e in sorted(d.entities)] == [
        ("Fever", 0.9, "model"), ("cough", None, None), ("chills", None, None)]


def test_jsonl_keeps_extra_keys():
    line = json.dumps({"id": "x", "text": "ab", "source": "s1", "entities": [
        {"start": 0, "end": 1, "type": "T", "text": "a", "score": None, "source": "m",
         "meta": {"k": 1}, "cui": "C1"}]})
    (d,) = jsonl.loads(line)
    out = json.loads(jsonl.dumps([d]))
    assert out["source"] == "s1"
    assert out["entities"][0]["cui"] == "C1" and out["entities"][0]["meta"] == {"k": 1}
    assert out["entities"][0]["source"] == "m"


def test_jsonl_is_one_document_per_line_for_any_line_splitter():
    docs = [Document("a", "x\u2028y\x85z\u2029\r\n"), Document("b", "q")]
    text = jsonl.dumps(docs)
    assert len(text.splitlines()) == 2
    assert [d.text for d in jsonl.loads(text)] == [d.text for d in docs]


def test_guess_format(tmp_path):
    (tmp_path / "a.PubTator.txt").write_text("x")
    (tmp_path / "d").mkdir()
    assert guess_format(tmp_path / "a.PubTator.txt") == "pubtator"
    assert guess_format(tmp_path / "d") == "brat"
    assert guess_format("new.jsonl", for_writing=True) == "jsonl"
    assert guess_format("new.xml", for_writing=True) == "bioc-xml"
    assert guess_format("out_folder", for_writing=True) == "brat"
    assert get_format("bioc").name == "bioc-xml"
    with pytest.raises(InputError, match="cannot guess"):
        guess_format("x.txt", for_writing=True)
    with pytest.raises(InputError, match="unknown format"):
        get_format("docx")


def test_stdout_and_stdin(tmp_path, capsysbinary):
    src = tmp_path / "a.jsonl"
    write_documents(sample_docs(), src)
    assert main(["convert", str(src), "-", "--to", "pubtator"]) == 2  # multi-line texts: refused
    capsysbinary.readouterr()
    write_documents(pubtator_docs(), src)
    assert main(["convert", str(src), "-", "--to", "pubtator"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.decode() == pubtator.dumps(pubtator_docs())
    assert err.decode().count("\n") == 1 and "5 documents" in err.decode()


# -- the CLI and bad input -----------------------------------------------------------------------
def run_cli(capsys, *argv):
    rc = main(["convert", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, err


def assert_one_line_error(rc, err, *needles):
    assert rc != 0
    assert "Traceback" not in err and "internal error" not in err
    assert err.count("\n") == 1 and err.startswith("biotag: error: "), err
    for n in needles:
        assert n in err, err


def test_cli_converts_every_pair(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_documents(pubtator_docs(), src)
    for fmt in FORMATS:
        dst = out_path(tmp_path, fmt)
        rc, err = run_cli(capsys, src, dst, "--to", fmt)
        assert rc == 0, err
        assert err.strip() == (f"biotag convert: 5 documents, 12 entities: {src} (jsonl) -> "
                               f"{dst} ({fmt})")
        rc, err = run_cli(capsys, dst, tmp_path / f"back_{fmt}.jsonl", "--from", fmt)
        assert rc == 0, err
        assert_same(pubtator_docs(), read_documents(tmp_path / f"back_{fmt}.jsonl"), fmt,
                    ordered=fmt != "brat")


BAD_JSONL = [
    ("missing", None, "no such file"),
    ("empty.jsonl", b"", "file is empty"),
    ("blank.jsonl", b"\n \n", "file is empty"),
    ("binary.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("latin1.jsonl", '{"id": "a", "text": "café"}\n'.encode("latin-1"), "not valid utf-8"),
    ("notjson.jsonl", b'{"id": "a", "text": "x"}\n{"id": "b", text}\n', "notjson.jsonl:2: not a JSON"),
    ("array.jsonl", b'[1, 2]\n', "array.jsonl:1: expected a JSON object"),
    ("noid.jsonl", b'{"text": "x"}\n', "noid.jsonl:1: document has no 'id'"),
    ("mismatch.jsonl", b'{"id": "a", "text": "heart attack", "entities": [{"start": 0, "end": 5, '
                       b'"type": "X", "text": "HEART"}]}\n',
     "mismatch.jsonl:1: document 'a': entity text 'HEART' does not match the document text 'heart'"),
    ("outside.jsonl", b'{"id": "a", "text": "abc", "entities": [{"start": 1, "end": 9, "type": "X"}]}\n',
     "outside.jsonl:1: document 'a': entity [1, 9) lies outside the text (length 3)"),
    ("negative.jsonl", b'{"id": "a", "text": "abc", "entities": [{"start": -1, "end": 2, "type": "X"}]}\n',
     "invalid entity span"),
    ("float.jsonl", b'{"id": "a", "text": "abc", "entities": [{"start": 0.5, "end": 2, "type": "X"}]}\n',
     "offsets must be integers"),
    ("score.jsonl", b'{"id": "a", "text": "abc", "entities": [{"start": 0, "end": 2, "type": "X", '
                    b'"score": "high"}]}\n', "score must be a number"),
]


@pytest.mark.parametrize("name, data, needle", BAD_JSONL, ids=[b[0] for b in BAD_JSONL])
def test_cli_bad_jsonl(tmp_path, capsys, name, data, needle):
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    rc, err = run_cli(capsys, path, tmp_path / "out.csv")
    assert_one_line_error(rc, err, needle)
    assert not (tmp_path / "out.csv").exists()


def test_cli_errors_replace(tmp_path, capsys):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"id": "a", "text": "café"}\n'.encode("latin-1"))
    rc, err = run_cli(capsys, path, tmp_path / "o.jsonl", "--errors", "replace")
    assert rc == 0 and read_documents(tmp_path / "o.jsonl")[0].text == "caf\ufffd"
    rc, err = run_cli(capsys, path, tmp_path / "o2.jsonl", "--encoding", "latin-1")
    assert rc == 0 and read_documents(tmp_path / "o2.jsonl")[0].text == "café"
    rc, err = run_cli(capsys, path, tmp_path / "o3.jsonl", "--encoding", "klingon")
    assert_one_line_error(rc, err, "unknown encoding")


BAD_OTHER = [
    ("x.pubtator", "pubtator", "1|t|abc\n1\t0\t2\tXY\tT\n", "x.pubtator:2: document '1': mention 'XY' "
                                                             "does not match the document text 'ab'"),
    ("x.pubtator", "pubtator", "1|t|abc\n1\t0\t9\tabc\tT\n", "x.pubtator:2: document '1': mention [0, 9) "
                                                              "lies outside"),
    ("x.pubtator", "pubtator", "1|t|abc\n2\t0\t1\ta\tT\n", "x.pubtator:2: line for document '2'"),
    ("x.pubtator", "pubtator", "hello world\n", "x.pubtator:1: expected an 'id|t|title' line"),
    ("x.conll", "conll", "# id = a\n# text = abc\nab\t0\t2\tB-X\n", None),
    ("x.conll", "conll", "# id = a\n# text = abc\nab\t0\t2\tBX\n", "x.conll:3: document 'a': bad tag 'BX'"),
    ("x.conll", "conll", "# id = a\n# text = abc\nxy\t0\t2\tO\n", "x.conll:3: document 'a': token 'xy' "
                                                                   "does not match"),
    ("x.conll", "conll", "# id = a\n# text = abc\nab\t0\t7\tO\n", "x.conll:3: document 'a': token [0, 7) "
                                                                   "lies outside"),
    ("x.conll", "conll", "# id = a\n# text = abc\ngarbage here\n", "x.conll:3: not a token line"),
    ("x.csv", "csv", "doc_id,start,end\n", "x.csv:1: header lacks column(s) type, text"),
    ("x.csv", "csv", "doc_id,start,end,type,text\na,0,1,X,a\n", "x.csv:2: document 'a' has entities but no "
                                                                "document row"),
    ("x.csv", "csv", "doc_id,start,end,type,text\na,,,,abc\na,1,5,X,\n", "x.csv:3: document 'a': entity "
                                                                         "[1, 5) lies outside"),
    ("x.csv", "csv", "doc_id,start,end,type,text\na,,,,abc\na,x,2,X,ab\n", "x.csv:3: document 'a': entity "
                                                                           "offsets must be integers"),
    ("x.xml", "bioc-xml", "<collection><document><id>a</id>\n<passage>\n", "x.xml:3: not valid BioC XML"),
    ("x.xml", "bioc-xml", "<collection><document><id>a</id><passage><offset>0</offset><text>abc</text>"
                          "<annotation id='A1'><infon key='type'>X</infon><location offset='0' length='2'/>"
                          "<text>zz</text></annotation></passage></document></collection>",
     "document 'a': entity text 'zz' does not match"),
    ("x.xml", "bioc-xml", "<collection><document><id>a</id><passage><offset>0</offset><text>abc</text>"
                          "<annotation id='A1'><infon key='type'>X</infon><location offset='2' length='5'/>"
                          "</annotation></passage></document></collection>", "location [2, 7) is empty or "
                                                                             "lies outside"),
    ("x.json", "bioc-json", '{"documents": [}', "x.json:1: not valid JSON"),
    ("x.json", "bioc-json", '{"documents": [{"id": "a"}]}', "not a valid BioC JSON collection: missing key"),
    ("x.json", "bioc-json", '{"a": 1}', "not a BioC JSON collection"),
]


@pytest.mark.parametrize("name, fmt, content, needle", BAD_OTHER)
def test_cli_bad_other_formats(tmp_path, capsys, name, fmt, content, needle):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    rc, err = run_cli(capsys, path, tmp_path / "o.jsonl", "--from", fmt)
    if needle is None:
        assert rc == 0, err
        return
    assert_one_line_error(rc, err, needle)


def test_cli_bad_brat(tmp_path, capsys):
    b = tmp_path / "b"
    b.mkdir()
    rc, err = run_cli(capsys, b, tmp_path / "o.jsonl", "--from", "brat")
    assert_one_line_error(rc, err, "no .txt files")
    (b / "a.txt").write_text("heart attack")
    (b / "a.ann").write_text("T1\tDisease 0 5\theart\nT2\tDisease 0 x\tbad\n")
    rc, err = run_cli(capsys, b, tmp_path / "o.jsonl")
    assert_one_line_error(rc, err, "a.ann:2: T2: bad offsets")
    (b / "a.ann").write_text("T1\tDisease 0 5\tHEART\n")
    rc, err = run_cli(capsys, b, tmp_path / "o.jsonl")
    assert_one_line_error(rc, err, "a.ann:1: document 'a': T1 text 'HEART' does not match")
    (b / "a.ann").write_text("T1\tDisease 6 20\tattack\n")
    rc, err = run_cli(capsys, b, tmp_path / "o.jsonl")
    assert_one_line_error(rc, err, "a.ann:1: document 'a': T1 fragment [6, 20) lies outside")
    (b / "a.ann").write_text("T1\tDisease 0 5\theart\n")
    (b / "orphan.ann").write_text("")
    rc, err = run_cli(capsys, b, tmp_path / "o.jsonl")
    assert_one_line_error(rc, err, "orphan.ann has no matching .txt")
    (b / "orphan.ann").unlink()
    (b / "bin.txt").write_bytes(b"\x00\x01")
    rc, err = run_cli(capsys, b, tmp_path / "o.jsonl")
    assert_one_line_error(rc, err, "bin.txt: looks like a binary file")


def test_cli_bad_arguments(tmp_path, capsys):
    src = tmp_path / "a.jsonl"
    write_documents(sample_docs(), src)
    assert_one_line_error(*run_cli(capsys, src, tmp_path / "o.docx"), "cannot guess the format")
    assert_one_line_error(*run_cli(capsys, src, tmp_path / "o", "--to", "docx"), "unknown format")
    assert_one_line_error(*run_cli(capsys, tmp_path / "nope.txt", tmp_path / "o.jsonl"), "no such file")
    assert_one_line_error(*run_cli(capsys, src, tmp_path, "--to", "jsonl"), "is a directory")
    (tmp_path / "f").write_text("x")
    assert_one_line_error(*run_cli(capsys, src, tmp_path / "f", "--to", "brat"), "not a folder")


def test_cli_subprocess_one_line_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\nnot json\n')
    env = {**os.environ}
    env.pop("BIOTAG_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "biotag.runtime.cli", "convert", str(bad),
                        str(tmp_path / "o.csv")], capture_output=True, text=True, env=env)
    assert p.returncode == 2
    assert p.stderr.strip() == f"biotag: error: {bad}:2: not a JSON object (Expecting value at column 1)"
    assert p.stdout == ""
