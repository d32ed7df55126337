"""The synthetic clinical notes in examples/ and their hand-made gold files: offsets, types and
assertions are valid, the files are what examples/make_examples.py builds from its specs, and
``biotag eval`` scores predictions against them."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from biotag.runtime.document import ASSERTIONS
from biotag.runtime.formats import jsonl

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _make_examples():
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MAKE = _make_examples()
NAMES = sorted(MAKE.CLINICAL)


def _raw(name: str) -> list[dict]:
    lines = (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_the_seven_notes():
    assert NAMES == ["discharge_en", "discharge_zh", "knee_en", "medications_en", "negation_en",
                     "outpatient_zh", "radiology_en"]


@pytest.mark.parametrize("name", NAMES)
def test_gold_offsets_types_assertions(name):
    note, lang, _ = MAKE.CLINICAL[name]
    (doc,) = _raw(name)
    assert doc["id"] == name and doc["lang"] == lang
    assert doc["text"] == (EXAMPLES / note).read_text(encoding="utf-8")
    assert "synthetic example" in doc["text"] or "示例病历" in doc["text"]
    text, ents = doc["text"], doc["entities"]
    assert len(ents) >= 30
    for e in ents:
        assert e["text"] == text[e["start"]:e["end"]], e
        assert e["type"] in MAKE.CLINICAL_TYPES[lang], e
        assert e.get("assertion", "present") in ASSERTIONS, e
        if e["type"] in MAKE.ALWAYS_PRESENT:
            assert "assertion" not in e, e
        assert text[e["start"]:e["end"]].strip() == e["text"]        # no edge whitespace
    assert len({(e["start"], e["end"], e["type"]) for e in ents}) == len(ents)
    # the canonical reader takes the file as it is
    (read,) = jsonl.read(EXAMPLES / f"{name}.jsonl")
    assert [(e.start, e.end, e.type, e.text) for e in read.sorted_entities()] == \
        [(e["start"], e["end"], e["type"], e["text"]) for e in ents]


@pytest.mark.parametrize("name", NAMES)
def test_gold_is_built_from_the_spec(name):
    built = MAKE.build_clinical(name)
    assert jsonl.dumps([built]) == (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8")


def test_what_the_notes_show():
    docs = {n: jsonl.read(EXAMPLES / f"{n}.jsonl")[0] for n in NAMES}

    def ents(name, typ=None, assertion=None):
        return {e.text for e in docs[name].entities
                if (typ is None or e.type == typ) and (assertion is None or e.assertion == assertion)}

    # negations: a denial and a list under one "No"
    assert {"chest pain", "fever", "chills", "rash"} <= ents("negation_en", "Symptom", "negated")
    assert "nausea" in ents("negation_en", "Symptom", "present")
    # nested mentions: the symptom holds its site
    pairs = {(o.text, i.text, o.type, i.type) for o, i in docs["knee_en"].nested_pairs()}
    assert ("left knee pain", "left knee", "Symptom", "Anatomy") in pairs
    # doses and abbreviations
    dosage = ents("medications_en", "Dosage")
    assert {"500 mg", "b.i.d.", "q8h", "650 mg q6h p.r.n.", "q8h p.r.n."} <= dosage
    # every assertion class and the Chinese types outside the English set
    allowed = set(ASSERTIONS)
    assert {e.assertion for d in docs.values() for e in d.entities} == allowed
    assert {"Equipment", "Department", "Microorganism"} <= \
        {e.type for n in ("discharge_zh", "outpatient_zh") for e in docs[n].entities}
    assert {"Dosage", "LabValue"} <= {e.type for n in NAMES if n.endswith("_en")
                                      for e in docs[n].entities}


def _run_eval(*args):
    env = dict(os.environ)
    env.pop("BIOTAG_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "biotag.runtime.cli", "eval", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("name", NAMES)
def test_biotag_eval_scores_the_gold(name, tmp_path):
    gold = EXAMPLES / f"{name}.jsonl"
    (doc,) = jsonl.read(gold)
    inner = {id(i) for _, i in doc.nested_pairs()}
    kept = [e for e in doc.entities if id(e) not in inner]
    doc.entities = kept
    pred = tmp_path / "pred.jsonl"
    jsonl.write([doc], pred)

    p = _run_eval("--gold", gold, "--pred", gold, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["micro"]["f1"] == 100.0

    p = _run_eval("--gold", gold, "--pred", pred, "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    n_gold = len(_raw(name)[0]["entities"])
    assert r["micro"]["gold"] == n_gold and r["micro"]["tp"] == len(kept)
    assert r["micro"]["precision"] == 100.0
    assert set(r["per_type"]) == {e["type"] for e in _raw(name)[0]["entities"]}
