"""The ConText-style assertion rules on hand-made tricky sentences (synthetic, English and
Chinese), the trigger file format, and the pipeline hook."""
from __future__ import annotations

import pytest

from biotag.runtime import assertion
from biotag.runtime.document import Document
from biotag.runtime.errors import FormatError

# (sentence, {mention: expected assertion}); a mention may be "text#k" for its k-th occurrence
CASES_EN = [
    ("The patient denies chest pain; no history of diabetes; mother had breast cancer.",
     {"chest pain": "negated", "diabetes": "negated", "breast cancer": "family"}),
    ("No fever, chills or rash.", {"fever": "negated", "chills": "negated", "rash": "negated"}),
    ("She denied fever, chills, night sweats and weight loss.",
     {"fever": "negated", "chills": "negated", "night sweats": "negated", "weight loss": "negated"}),
    ("No cough but reports dyspnea.", {"cough": "negated", "dyspnea": "present"}),
    ("He has no rash, however he has severe pruritus.", {"rash": "negated", "pruritus": "present"}),
    ("Not only fever but also headache was present.", {"fever": "present", "headache": "present"}),
    ("Pneumonia cannot be ruled out.", {"Pneumonia": "possible"}),
    ("We cannot rule out pulmonary embolism.", {"pulmonary embolism": "possible"}),
    ("Pulmonary embolism was ruled out by CT angiography.", {"Pulmonary embolism": "negated"}),
    ("Rule out myocardial infarction.", {"myocardial infarction": "possible"}),
    ("Possible pneumonia in the right lower lobe.", {"pneumonia": "possible"}),
    ("Findings are suspicious for malignancy.", {"malignancy": "possible"}),
    ("History of asthma, now presenting with wheezing.",
     {"asthma": "historical", "wheezing": "present"}),
    ("Past medical history: hypertension and hyperlipidemia.",
     {"hypertension": "historical", "hyperlipidemia": "historical"}),
    ("Her mother had breast cancer at age 50.", {"breast cancer": "family"}),
    ("Family history of colon cancer in his father.", {"colon cancer": "family"}),
    ("There is no increase in pain.", {"pain": "present"}),
    ("No change in the size of the nodule.", {"nodule": "present"}),
    ("Gram-negative bacteria were isolated.", {"bacteria": "present"}),
    ("The abdomen is not tender and there is no hepatomegaly.",
     {"hepatomegaly": "negated"}),
    ("Chest pain resolved after nitroglycerin.", {"Chest pain": "negated", "nitroglycerin": "present"}),
    ("Without evidence of metastasis.", {"metastasis": "negated"}),
    ("The nodule is unchanged; no new lesions.", {"nodule": "present", "lesions": "negated"}),
    ("Fever?", {"Fever": "possible"}),
    ("He was admitted in May with pneumonia.", {"pneumonia": "present"}),
    ("Diabetes. No hypertension.", {"Diabetes": "present", "hypertension": "negated"}),
    # exceptions: negated unless the clause denies or states a normal finding
    ("History of malignancy other than basal cell carcinoma.",
     {"malignancy": "historical", "basal cell carcinoma": "negated"}),
    ("No complaints other than headache.", {"headache": "present"}),
    ("Physical examination was unremarkable, except for bilateral crackles.",
     {"crackles": "present"}),
    ("Laboratory findings were within normal limits except for an elevated CEA.",
     {"CEA": "present"}),
    # a negated verb with its subject list before it, or its object after it
    ("Hypertension, proteinuria and hand-foot syndrome were not observed.",
     {"Hypertension": "negated", "proteinuria": "negated", "hand-foot syndrome": "negated"}),
    ("On examination, the patient was not tachypnoeic.", {"tachypnoeic": "negated"}),
    ("This was not associated with nausea, vomiting or fever.",
     {"nausea": "negated", "vomiting": "negated", "fever": "negated"}),
    ("Speech was normal and there was not any tremor.", {"Speech": "present", "tremor": "negated"}),
    # stopped, refused, resolved
    ("He discontinued warfarin and started apixaban.", {"warfarin": "negated", "apixaban": "present"}),
    ("The chest CT excluded pulmonary embolism.", {"CT": "present", "pulmonary embolism": "negated"}),
    ("She remained seizure-free for six months.", {"seizure": "negated"}),
    ("The CT did not show any evidence of intracardiac air.", {"air": "negated"}),
]

CASES_ZH = [
    ("患者否认高血压、糖尿病病史。", {"高血压": "negated", "糖尿病": "negated"}),
    ("无发热、寒战，有咳嗽。", {"发热": "negated", "寒战": "negated", "咳嗽": "present"}),
    ("未见明显骨折。", {"骨折": "negated"}),
    ("没有胸痛，但有胸闷。", {"胸痛": "negated", "胸闷": "present"}),
    ("腹痛不伴恶心呕吐。", {"腹痛": "present", "恶心": "negated", "呕吐": "negated"}),
    ("双肺未闻及干湿啰音。", {"干湿啰音": "negated"}),
    ("肺炎待排。", {"肺炎": "possible"}),
    ("疑似肺结核。", {"肺结核": "possible"}),
    ("考虑急性阑尾炎可能。", {"急性阑尾炎": "possible"}),
    ("不能排除肺栓塞。", {"肺栓塞": "possible"}),
    ("已排除肺栓塞。", {"肺栓塞": "negated"}),
    ("既往有高血压病史10年。", {"高血压": "historical"}),
    ("母亲患乳腺癌。", {"乳腺癌": "family"}),
    ("家族史：父亲有冠心病。", {"冠心病": "family"}),
    ("有糖尿病家族史。", {"糖尿病": "family"}),
    ("无明显诱因出现胸痛。", {"胸痛": "present"}),
    ("患者胸痛3天。", {"胸痛": "present"}),
    ("乙肝表面抗原阴性。", {"乙肝表面抗原": "negated"}),
]


def _spans(text, mentions):
    out = []
    for m in mentions:
        frag, _, k = m.partition("#")
        i = -1
        for _ in range(int(k or 0) + 1):
            i = text.index(frag, i + 1)
        out.append((i, i + len(frag)))
    return out


@pytest.mark.parametrize("text,want", CASES_EN + CASES_ZH, ids=[c[0][:40] for c in CASES_EN + CASES_ZH])
def test_tricky_sentences(text, want):
    got = assertion.assertions(text, _spans(text, want))
    assert dict(zip(want, got)) == want


def test_trigger_inside_entity_is_not_its_own_trigger():
    text = "Patient is a non-smoker; family history unremarkable."
    assert assertion.assertions(text, [(13, 23)]) == ["present"]     # "non-smoker" itself
    text = "His mother is well."
    assert assertion.assertions(text, [(4, 10)]) == ["present"]      # the relative herself


def test_scope_limited_to_the_clause_and_priority():
    text = "No fever. Cough for three days."
    assert assertion.assertions(text, [(3, 8), (10, 15)]) == ["negated", "present"]
    text = "No family history of diabetes."   # negated wins over historical; family the person
    assert assertion.assertions(text, [(21, 29)]) in (["negated"], ["family"])
    text = "Mother denies chest pain."         # family > negated
    assert assertion.assertions(text, [(14, 24)]) == ["family"]


def test_hospital_file_extends_and_overrides(tmp_path):
    extra = tmp_path / "ward.tsv"
    extra.write_text("# local terms\nnad\tnegated\tforward\nno\tpseudo\n", encoding="utf-8")
    rules = assertion.load_rules([extra])
    text = "NAD chest pain. No fever."
    assert assertion.assertions(text, [(4, 14), (19, 24)], rules) == ["negated", "present"]
    assert rules.version != assertion.default_rules().version


def test_environment_trigger_files(tmp_path, monkeypatch):
    extra = tmp_path / "ward.tsv"
    extra.write_text("sans\tnegated\tforward\n", encoding="utf-8")
    monkeypatch.setenv(assertion.ENV, str(extra))
    text = "sans fever"
    assert assertion.assertions(text, [(5, 10)]) == ["negated"]
    monkeypatch.delenv(assertion.ENV)
    assert assertion.assertions(text, [(5, 10)]) == ["present"]


@pytest.mark.parametrize("line,msg", [
    ("no\tmaybe\tforward", "unknown category 'maybe'"),
    ("no\tnegated\tsideways", "unknown direction 'sideways'"),
    ("no\tnegated\tforward\tx", "max_words must be a positive integer"),
    ("no", "expected 'phrase<TAB>category"),
])
def test_bad_trigger_lines(tmp_path, line, msg):
    p = tmp_path / "bad.tsv"
    p.write_text(f"# header\n{line}\n", encoding="utf-8")
    with pytest.raises(FormatError, match=f"bad.tsv:2: .*{msg}"):
        assertion.load_rules([p])


def test_builtin_lists_load_and_version_is_stable():
    rules = assertion.default_rules()
    assert len(rules) > 100
    assert {t.category for t in rules.triggers.values()} == set(assertion.CATEGORIES)
    assert assertion.rules_version() == assertion.load_rules().version
    assert len(assertion.rules_version()) == 12


def test_annotate_sets_entities_in_place():
    d = Document("d", "Denies fever but has cough.")
    d.add(7, 12, "Symptom")
    d.add(21, 26, "Symptom")
    out = assertion.annotate(d)
    assert out is d
    assert [e.assertion for e in d.sorted_entities()] == ["negated", "present"]


# -- gold extraction for measurement (tiny brat folders in the corpora's own layouts) ----------
def test_maccrobat_and_chia_gold(tmp_path):
    from biotag.runtime import assertion_eval

    m = tmp_path / "extra" / "maccrobat2020" / "dev"
    m.mkdir(parents=True)
    text = "He denied fever but had a cough. Possible sepsis."
    (m / "1.txt").write_text(text, encoding="utf-8")
    (m / "1.ann").write_text(
        "T1\tSign_symptom 10 15\tfever\nE1\tSign_symptom:T1 \nA1\tPOLARITY E1 NEG\n"
        "T2\tSign_symptom 26 31\tcough\nE2\tSign_symptom:T2 \n"
        "T3\tDisease_disorder 42 48\tsepsis\nE3\tDisease_disorder:T3 \nA2\tPOLARITY E3 UNCERTAIN\n"
        "T4\tBiological_structure 0 2\tHe\nR1\tMODIFY Arg1:T4 Arg2:E1\t\n", encoding="utf-8")
    gold = assertion_eval.load_gold("maccrobat2020", "dev", tmp_path)
    assert [(e.text, e.assertion) for e in gold[0].sorted_entities()] == [
        ("fever", "negated"), ("cough", "present"), ("sepsis", "possible")]   # T4: no event
    r = assertion_eval.score(gold)
    assert r["classes"]["negated"] == {"gold": 1, "predicted": 1, "tp": 1, "precision": 100.0,
                                       "recall": 100.0, "f1": 100.0}
    assert r["accuracy"] == 100.0
    # a predictor that says present everywhere misses both
    r = assertion_eval.score(gold, predict=lambda text, spans: ["present"] * len(spans))
    assert r["classes"]["negated"]["recall"] == 0.0 and r["accuracy"] == pytest.approx(33.33)

    c = tmp_path / "extra" / "chia" / "dev"
    c.mkdir(parents=True)
    text = "No prior treatment with aspirin or heparin\nDiabetes"
    (c / "N_inc.txt").write_text(text, encoding="utf-8")
    (c / "N_inc.ann").write_text(
        "T1\tNegation 0 2\tNo\nT2\tDrug 24 31\taspirin\nT3\tDrug 35 42\theparin\n"
        "T4\tScope 9 42\ttreatment with aspirin or heparin\nT5\tCondition 43 51\tDiabetes\n"
        "R1\tHas_negation Arg1:T4 Arg2:T1\t\n*\tOR T2 T3\n", encoding="utf-8")
    gold = assertion_eval.load_gold("chia", "dev", tmp_path)
    assert [(e.text, e.assertion) for e in gold[0].sorted_entities()] == [
        ("aspirin", "negated"), ("heparin", "negated"), ("Diabetes", "present")]
    assert assertion_eval.score(gold)["classes"]["negated"]["f1"] == 100.0


# -- the tagging path --------------------------------------------------------------------------
def test_tagger_sets_assertion_after_selection_and_option_turns_it_off():
    from biotag.runtime.document import Entity
    from biotag.runtime.pipeline import Pipeline, TagOptions

    t = Pipeline(None)                       # no model: only the selection step runs
    text = "Denies chest pain. Possible pneumonia."
    found = {(7, 17, "Symptom"): Entity(7, 17, "Symptom", "chest pain", 0.9, "model"),
             (28, 37, "Disease"): Entity(28, 37, "Disease", "pneumonia", 0.8, "model")}
    on = t.select(text, [], dict(found), TagOptions())
    assert sorted((e.text, e.assertion) for e in on) == [("chest pain", "negated"),
                                                        ("pneumonia", "possible")]
    off = t.select(text, [], dict(found), TagOptions(assertion=False))
    assert {e.assertion for e in off} == {"present"}


def test_tag_cli_assertion_option():
    import argparse

    from biotag.runtime import tag_cli

    parser = argparse.ArgumentParser()
    tag_cli.add_cli(parser.add_subparsers())
    assert parser.parse_args(["tag", "x.txt"]).assertion == "on"
    assert parser.parse_args(["tag", "x.txt", "--assertion", "off"]).assertion == "off"
    with pytest.raises(SystemExit):
        parser.parse_args(["tag", "x.txt", "--assertion", "maybe"])


def test_doctor_reports_the_rules_version(tmp_path, monkeypatch):
    from biotag.runtime import doctor

    info = doctor.assertion_info()
    assert info["ok"] and info["version"] == assertion.rules_version()
    assert {"en.tsv", "zh.tsv"} <= set(info["files"])
    bad = tmp_path / "bad.tsv"
    bad.write_text("no\tmaybe\tforward\n", encoding="utf-8")
    monkeypatch.setenv(assertion.ENV, str(bad))
    info = doctor.assertion_info()
    assert not info["ok"] and "unknown category" in info["error"]


def test_synthetic_examples_gold_assertions():
    from pathlib import Path

    from biotag.runtime import assertion_eval

    ex = Path(__file__).resolve().parents[1] / "examples"
    for name in ("assertion_en.jsonl", "assertion_zh.jsonl"):
        (doc,) = assertion_eval.load_gold(str(ex / name))
        assert {e.assertion for e in doc.entities} == set(assertion.ASSERTIONS)   # every class
        got = assertion.assertions(doc.text, [e.span for e in doc.entities])
        wrong = [(e.text, e.assertion, g) for e, g in zip(doc.entities, got) if e.assertion != g]
        assert wrong == []


def test_trigger_files_are_package_data():
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")     # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = cfg["tool"]["setuptools"]["package-data"]["biotag.runtime"]
    files = [p.relative_to(root / "runtime").as_posix() for p in assertion.builtin_files()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files)
