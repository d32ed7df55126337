"""Assertion status: the data model and every writer/reader carry it (absent = present)."""
from __future__ import annotations

import json

import pytest

from biotag.runtime.document import ASSERTIONS, Document, Entity
from biotag.runtime.errors import FormatError
from biotag.runtime.formats import read_documents, write_documents
from biotag.runtime.formats import brat, bioc_, csv_, jsonl


def _doc() -> Document:
    text = "Denies chest pain; no diabetes. Mother had breast cancer. 患者否认高血压。"
    d = Document("a1", text, lang="en")
    for frag, typ, a in [("chest pain", "Symptom", "negated"), ("diabetes", "Disease", "negated"),
                         ("breast cancer", "Disease", "family"), ("chest", "Anatomy", "present"),
                         ("高血压", "Disease", "negated")]:
        i = text.index(frag)
        d.add(i, i + len(frag), typ, score=0.5, assertion=a)
    d2 = Document("a2", "Possible pneumonia; history of asthma.", lang="en")
    d2.add(9, 18, "Disease", assertion="possible")
    d2.add(31, 37, "Disease", assertion="historical")
    return [d, d2]


def _states(docs):
    return [[(e.start, e.end, e.type, e.assertion) for e in d.sorted_entities()] for d in docs]


def test_entity_default_and_validation():
    e = Entity(0, 3, "X")
    assert e.assertion == "present"
    assert e.with_(assertion="negated").assertion == "negated"
    with pytest.raises(ValueError, match="unknown assertion"):
        Entity(0, 3, "X", assertion="maybe")
    assert set(ASSERTIONS) == {"present", "negated", "possible", "historical", "family"}


def test_canonical_json_absent_means_present():
    docs = _doc()
    d = docs[0].to_json()
    by_text = {e["text"]: e for e in d["entities"]}
    assert by_text["chest pain"]["assertion"] == "negated"
    assert "assertion" not in by_text["chest"]            # present is left out
    back = Document.from_json(json.loads(json.dumps(d)))
    assert _states([back]) == _states(docs[:1])


@pytest.mark.parametrize("fmt,name", [("jsonl", "x.jsonl"), ("brat", "b"), ("bioc-xml", "x.xml"),
                                      ("bioc-json", "x.json"), ("csv", "x.csv")])
def test_round_trip(tmp_path, fmt, name):
    docs = _doc()
    write_documents(docs, tmp_path / name, fmt)
    back = read_documents(tmp_path / name, fmt)
    assert _states(sorted(back, key=lambda d: d.id)) == _states(docs)


def test_brat_attribute_line(tmp_path):
    ann = brat.format_ann(_doc()[0])
    lines = ann.splitlines()
    tids = {ln.split("\t")[2]: ln.split("\t")[0] for ln in lines if ln.startswith("T")}
    assert f"Assertion {tids['diabetes']} negated" in [ln.split("\t")[1] for ln in lines
                                                        if ln.startswith("A")]
    assert not any(f"Assertion {tids['chest']} " in ln for ln in lines)
    # other attributes stay attributes; an unknown Assertion value is kept as an attribute too
    text = "no fever"
    ents = brat.parse_ann(text, "T1\tSymptom 3 8\tfever\nA1\tAssertion T1 negated\n"
                                "A2\tSeverity T1 mild\n", "d")
    assert ents[0].assertion == "negated" and ents[0].meta["attributes"] == {"Severity": "mild"}
    ents = brat.parse_ann(text, "T1\tSymptom 3 8\tfever\nA1\tAssertion T1 Hypothetical\n", "d")
    assert ents[0].assertion == "present" and ents[0].meta["attributes"] == {"Assertion": "Hypothetical"}


def test_bioc_infon_and_csv_column():
    docs = _doc()
    xml = bioc_.dumps_xml(docs)
    assert '<infon key="assertion">negated</infon>' in xml
    assert xml.count('key="assertion"') == 6              # the present entity has none
    text = csv_.dumps(docs)
    header = text.splitlines()[0].split(",")
    assert header[-1] == "assertion"
    assert ",family\r\n" in text


def test_files_without_assertion_read_as_present():
    old_csv = "doc_id,start,end,type,text,score,source,lang\r\nd,,,,no fever,,,en\r\nd,3,8,S,fever,,,\r\n"
    assert csv_.loads(old_csv)[0].entities[0].assertion == "present"
    line = '{"id": "d", "text": "no fever", "entities": [{"start": 3, "end": 8, "type": "S"}]}'
    assert jsonl.loads(line)[0].entities[0].assertion == "present"


def test_bad_assertion_value_is_a_format_error():
    line = ('{"id": "d", "text": "no fever", "entities": [{"start": 3, "end": 8, "type": "S", '
            '"assertion": "nope"}]}')
    with pytest.raises(FormatError, match="unknown assertion 'nope'"):
        jsonl.loads(line)
    with pytest.raises(FormatError, match="x.csv:3"):
        csv_.loads("doc_id,start,end,type,text,assertion\r\nd,,,,no fever,\r\nd,3,8,S,fever,maybe\r\n",
                   "x.csv")
