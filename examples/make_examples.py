"""Build the annotated examples ``nested_en.jsonl`` and ``nested_zh.jsonl`` from the synthetic
notes ``note_en.txt`` and ``note_zh.txt``, and the assertion examples ``assertion_en.jsonl`` and
``assertion_zh.jsonl`` (gold assertion status: negated, possible, historical, family) from
``note_assertion_en.txt`` and ``note_assertion_zh.txt``. Offsets are found in the text by code (each mention
must occur exactly as often as its occurrence index needs), never written by hand.

    python examples/make_examples.py

The notes are invented for demonstration; they describe no real patient. Scores are made up to
show the confidence slider (a few entities score low).
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (mention, type, score, occurrence): nesting three and four deep, same span with two types,
# and crossing entities of different types
EN = [
    ("type 2 diabetes mellitus", "Disease", 0.97, 0),
    ("diabetes mellitus", "Disease", 0.91, 0),
    ("chronic kidney disease stage 3", "Disease", 0.88, 0),
    ("chronic kidney disease", "Disease", 0.95, 0),
    ("kidney", "Anatomy", 0.83, 0),
    ("acute ST-elevation myocardial infarction", "Disease", 0.96, 0),
    ("ST-elevation myocardial infarction", "Disease", 0.93, 0),
    ("myocardial infarction", "Disease", 0.98, 0),
    ("myocardial", "Anatomy", 0.62, 0),
    ("left anterior descending artery territory", "Anatomy", 0.41, 0),
    ("left anterior descending artery", "Anatomy", 0.86, 0),
    ("ibuprofen", "Chemical", 0.99, 0),
    ("knee pain", "Symptom", 0.9, 0),
    ("knee", "Anatomy", 0.8, 0),
    ("Troponin I", "Protein", 0.74, 0),
    ("Troponin I", "Test", 0.81, 0),
    ("BRCA1 gene", "Gene", 0.92, 0),
    ("gene mutation carrier status", "Test", 0.38, 0),
    ("aspirin", "Chemical", 0.99, 0),
    ("clopidogrel", "Chemical", 0.98, 0),
    ("metformin", "Chemical", 0.99, 0),
    ("reduced renal function", "Symptom", 0.57, 0),
    ("renal", "Anatomy", 0.45, 0),
    ("Echocardiography", "Imaging", 0.87, 0),
    ("left ventricular ejection fraction", "Test", 0.84, 0),
    ("left ventricular", "Anatomy", 0.66, 0),
    ("man", "Population", 0.22, 0),
]

ZH = [
    ("反复胸痛", "Symptom", 0.86, 0),
    ("胸痛", "Symptom", 0.95, 0),
    ("胸", "Anatomy", 0.58, 0),
    ("呼吸困难", "Symptom", 0.93, 0),
    ("2型糖尿病", "Disease", 0.96, 0),
    ("糖尿病", "Disease", 0.9, 0),
    ("慢性肾脏病", "Disease", 0.94, 0),
    ("肾脏", "Anatomy", 0.79, 0),
    ("心电图", "Test", 0.9, 0),
    ("急性前壁ST段抬高型心肌梗死", "Disease", 0.92, 0),
    ("ST段抬高型心肌梗死", "Disease", 0.89, 0),
    ("心肌梗死", "Disease", 0.97, 0),
    ("心肌", "Anatomy", 0.6, 0),
    ("前壁", "Anatomy", 0.42, 0),
    ("肌钙蛋白I", "Test", 0.88, 0),
    ("肌钙蛋白I升高", "Symptom", 0.47, 0),
    ("左心室射血分数", "Test", 0.85, 0),
    ("射血分数降低", "Symptom", 0.55, 0),
    ("左心室", "Anatomy", 0.7, 0),
    ("阿司匹林", "Chemical", 0.99, 0),
    ("氯吡格雷", "Chemical", 0.98, 0),
    ("经皮冠状动脉介入治疗", "Procedure", 0.9, 0),
    ("冠状动脉", "Anatomy", 0.77, 0),
]


# (mention, type, assertion, occurrence): negation lists and scope across "but", history, family,
# "rule out", "unlikely", "cannot be excluded"; Chinese 无/否认/未闻及/待排/不除外/可能/既往/母亲患
ASSERT_EN = [
    ("chest pain", "Symptom", "present", 0),
    ("shortness of breath", "Symptom", "present", 0),
    ("fever", "Symptom", "negated", 0),
    ("chills", "Symptom", "negated", 0),
    ("cough", "Symptom", "negated", 0),
    ("nausea", "Symptom", "negated", 0),
    ("palpitations", "Symptom", "present", 0),
    ("hypertension", "Disease", "historical", 0),
    ("type 2 diabetes", "Disease", "historical", 0),
    ("appendectomy", "Procedure", "historical", 0),
    ("stroke", "Disease", "negated", 0),
    ("breast cancer", "Disease", "family", 0),
    ("myocardial infarction", "Disease", "family", 0),
    ("leg edema", "Symptom", "negated", 0),
    ("unstable angina", "Disease", "possible", 0),
    ("pulmonary embolism", "Disease", "possible", 0),
    ("Pneumonia", "Disease", "possible", 0),
    ("Pericarditis", "Disease", "possible", 0),
    ("Aspirin", "Chemical", "present", 0),
    ("CT angiography", "Procedure", "present", 0),
    ("pulmonary embolism", "Disease", "possible", 1),
]

ASSERT_ZH = [
    ("胸痛", "Symptom", "present", 0),
    ("气短", "Symptom", "present", 0),
    ("发热", "Symptom", "negated", 0),
    ("寒战", "Symptom", "negated", 0),
    ("咳嗽", "Symptom", "negated", 0),
    ("恶心", "Symptom", "negated", 0),
    ("心悸", "Symptom", "present", 0),
    ("高血压", "Disease", "historical", 0),
    ("2型糖尿病", "Disease", "historical", 0),
    ("脑卒中", "Disease", "negated", 0),
    ("乳腺癌", "Disease", "family", 0),
    ("心肌梗死", "Disease", "family", 0),
    ("干湿啰音", "Symptom", "negated", 0),
    ("水肿", "Symptom", "negated", 0),
    ("不稳定型心绞痛", "Disease", "possible", 0),
    ("肺栓塞", "Disease", "possible", 0),
    ("心包炎", "Disease", "possible", 0),
    ("阿司匹林", "Chemical", "present", 0),
]


def find(text: str, mention: str, occurrence: int) -> int:
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.find(mention, pos + 1)
        if pos < 0:
            raise ValueError(f"{mention!r} occurs fewer than {occurrence + 1} times")
    return pos


def build(doc_id: str, note: str, lang: str, spec) -> "Document":
    sys.path.insert(0, str(HERE.parent))
    from biotag.runtime.document import Document

    text = (HERE / note).read_text(encoding="utf-8")
    doc = Document(doc_id, text, [], lang, {"source": "synthetic example (biotag)"})
    for mention, typ, score, occ in spec:
        a = find(text, mention, occ)
        doc.add(a, a + len(mention), typ, score=score, source="model")
    return doc


def build_assertion(doc_id: str, note: str, lang: str, spec) -> "Document":
    sys.path.insert(0, str(HERE.parent))
    from biotag.runtime.document import Document

    text = (HERE / note).read_text(encoding="utf-8")
    doc = Document(doc_id, text, [], lang, {"source": "synthetic example (biotag)"})
    for mention, typ, assertion, occ in spec:
        a = find(text, mention, occ)
        doc.add(a, a + len(mention), typ, assertion=assertion)
    return doc


def main() -> int:
    from biotag.runtime.formats import write_documents

    en = build("nested_en", "note_en.txt", "en", EN)
    zh = build("nested_zh", "note_zh.txt", "zh", ZH)
    for d in (en, zh):
        depth = max(sum(1 for o in d.entities if o.start <= e.start and e.end <= o.end) for e in d.entities)
        assert depth >= 3, d.id
        assert d.crossing_pairs(), d.id
    write_documents([en], HERE / "nested_en.jsonl", "jsonl")
    write_documents([zh], HERE / "nested_zh.jsonl", "jsonl")
    print(f"nested_en.jsonl: {len(en.entities)} entities; nested_zh.jsonl: {len(zh.entities)} entities")
    for name, note, lang, spec in (("assertion_en", "note_assertion_en.txt", "en", ASSERT_EN),
                                   ("assertion_zh", "note_assertion_zh.txt", "zh", ASSERT_ZH)):
        d = build_assertion(name, note, lang, spec)
        write_documents([d], HERE / f"{name}.jsonl", "jsonl")
        print(f"{name}.jsonl: {len(d.entities)} entities with gold assertions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
