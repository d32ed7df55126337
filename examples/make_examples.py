"""Build the annotated examples ``nested_en.jsonl`` and ``nested_zh.jsonl`` from the synthetic
notes ``note_en.txt`` and ``note_zh.txt``, and the assertion examples ``assertion_en.jsonl`` and
``assertion_zh.jsonl`` (gold assertion status: negated, possible, historical, family) from
``note_assertion_en.txt`` and ``note_assertion_zh.txt``. Offsets are found in the text by code (each mention
must occur exactly as often as its occurrence index needs), never written by hand.

It also builds the gold files of the clinical notes (every entity of the note annotated, with its
assertion status), for scoring a model with ``biotag eval``::

    discharge_en.jsonl   note_discharge_en.txt    discharge summary
    radiology_en.jsonl   note_radiology_en.txt    CT report
    medications_en.jsonl note_medications_en.txt  medication list (mg, b.i.d., q8h, p.r.n.)
    negation_en.jsonl    note_negation_en.txt     negations ("denies chest pain", "no fever, chills or rash")
    knee_en.jsonl        note_knee_en.txt         nested mentions ("left knee pain" > "left knee")
    discharge_zh.jsonl   note_discharge_zh.txt    出院小结
    outpatient_zh.jsonl  note_outpatient_zh.txt   门诊病历

English notes use the English clinical types (docs/clinical_types.md) with MACCROBAT2020's span
conventions: severity and descriptive modifiers stay outside ("mild epigastric tenderness" gives
"epigastric tenderness"); a body site beside a test, procedure or disease is its own Anatomy
mention ("chest" + "X-ray", "right lower lobe" + "pneumonia"); a dose and the frequency right after
it are one Dosage ("650 mg q6h p.r.n."), a route between them ("500 mg PO b.i.d.") splits them
and is not annotated (MACCROBAT's Administration is left out); results and values are LabValue
("elevated", "88%", "unremarkable"). One rule differs from MACCROBAT2020, which marks only "pain"
beside "left knee": a symptom or finding with its site in front covers the site, and the site
inside is Anatomy too ("left knee pain" > "left knee"), as in CMeEE. Chinese notes follow CMeEE:
症状 spans hold their site (胸痛 > 胸, 心悸 > 心) and an abnormal reading holds its test item
(体温最高39.2℃ > 体温); examinations, imaging and routes are Procedure (胸部CT, 心电图, 口服);
values are not annotated. Anatomy, Dosage, LabValue, Equipment and Department entities are always
present; the others carry the status the note gives them (stopped drugs are negated, as in
MACCROBAT2020; planned tests are present).

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


# Clinical notes: (mention, type, assertion, where). ``where`` is the occurrence index of the
# mention (counted at word boundaries in English), or a context string that occurs exactly once
# in the note and holds the mention (the mention's first occurrence inside it is meant).
P, NEG, POS, HIST, FAM = "present", "negated", "possible", "historical", "family"

DISCHARGE_EN = [
    ("Pneumonia", "Disease", P, 0),
    ("chronic obstructive pulmonary disease", "Disease", P, 0),
    ("atrial fibrillation", "Disease", P, 0),
    ("fever", "Symptom", P, 0),
    ("cough", "Symptom", P, 0),
    ("dyspnea", "Symptom", P, 0),
    ("Oxygen saturation", "Test", P, 0),
    ("88%", "LabValue", P, 0),
    ("Chest", "Anatomy", P, 0),
    ("X-ray", "Test", P, 0),
    ("consolidation", "Symptom", P, 0),
    ("right lower lobe", "Anatomy", P, 0),
    ("White blood cell count", "Test", P, 0),
    ("15.2 x 10^9/L", "LabValue", P, 0),
    ("C-reactive protein", "Test", P, 0),
    ("elevated", "LabValue", P, 0),
    ("Blood cultures", "Test", P, 0),
    ("negative", "LabValue", P, 0),
    ("ceftriaxone", "Chemical", P, 0),
    ("1 g", "Dosage", P, 0),
    ("daily", "Dosage", P, "1 g IV daily"),
    ("azithromycin", "Chemical", P, 0),
    ("500 mg", "Dosage", P, 0),
    ("daily", "Dosage", P, "500 mg PO daily"),
    ("supplemental oxygen", "Procedure", P, 0),
    ("Apixaban", "Chemical", P, 0),
    ("chest pain", "Symptom", NEG, 0),
    ("chest", "Anatomy", P, "chest pain"),
    ("diarrhea", "Symptom", NEG, 0),
    ("Hysterectomy", "Procedure", HIST, 0),
    ("lung cancer", "Disease", FAM, 0),
    ("Right lower lobe", "Anatomy", P, 0),
    ("pneumonia", "Disease", P, 0),
    ("amoxicillin-clavulanate", "Chemical", P, 0),
    ("875 mg", "Dosage", P, 0),
    ("b.i.d.", "Dosage", P, "875 mg PO b.i.d."),
    ("apixaban", "Chemical", P, 0),
    ("5 mg", "Dosage", P, 0),
    ("b.i.d.", "Dosage", P, "5 mg PO b.i.d.;"),
    ("tiotropium", "Chemical", P, 0),
    ("18 mcg", "Dosage", P, 0),
    ("once daily", "Dosage", P, 0),
    ("chest", "Anatomy", P, "Repeat chest X-ray"),
    ("X-ray", "Test", P, "Repeat chest X-ray"),
]

RADIOLOGY_EN = [
    ("CT", "Test", P, 0),
    ("chest", "Anatomy", P, 0),
    ("abdomen", "Anatomy", P, 0),
    ("pelvis", "Anatomy", P, 0),
    ("contrast", "Chemical", P, 0),
    ("Weight loss", "Symptom", P, 0),
    ("abdominal pain", "Symptom", P, 0),
    ("abdominal", "Anatomy", P, 0),
    ("colon cancer", "Disease", HIST, 0),
    ("right hemicolectomy", "Procedure", HIST, 0),
    ("Chest", "Anatomy", P, "Chest:"),
    ("nodule", "Symptom", P, "9 mm nodule"),
    ("right upper lobe", "Anatomy", P, "in the right upper lobe"),
    ("pleural effusion", "Disease", NEG, 0),
    ("pneumothorax", "Disease", NEG, 0),
    ("Abdomen", "Anatomy", P, "Abdomen:"),
    ("lesions", "Symptom", P, "hypodense lesions"),
    ("liver", "Anatomy", P, "lesions in the liver"),
    ("Gallstones", "Symptom", P, 0),
    ("gallbladder wall thickening", "Symptom", NEG, 0),
    ("gallbladder wall", "Anatomy", P, 0),
    ("kidneys", "Anatomy", P, 0),
    ("spleen", "Anatomy", P, 0),
    ("pancreas", "Anatomy", P, 0),
    ("unremarkable", "LabValue", P, 0),
    ("Pelvis", "Anatomy", P, "Pelvis:"),
    ("free fluid", "Symptom", NEG, 0),
    ("lymphadenopathy", "Symptom", NEG, 0),
    ("liver lesions", "Symptom", P, 0),
    ("liver", "Anatomy", P, "liver lesions"),
    ("metastases", "Symptom", POS, 0),
    ("right upper lobe nodule", "Symptom", P, 0),
    ("right upper lobe", "Anatomy", P, "right upper lobe nodule"),
    ("metastasis", "Symptom", POS, 0),
    ("Cholelithiasis", "Disease", P, 0),
    ("cholecystitis", "Disease", NEG, 0),
]

MEDICATIONS_EN = [
    ("penicillin", "Chemical", P, 0),
    ("Metformin", "Chemical", P, 0),
    ("500 mg", "Dosage", P, 0),
    ("b.i.d.", "Dosage", P, 0),
    ("type 2 diabetes", "Disease", P, 0),
    ("Lisinopril", "Chemical", P, 0),
    ("10 mg", "Dosage", P, 0),
    ("once daily", "Dosage", P, 0),
    ("hypertension", "Disease", P, 0),
    ("Atorvastatin", "Chemical", P, 0),
    ("40 mg", "Dosage", P, "Atorvastatin 40 mg"),
    ("nightly", "Dosage", P, "40 mg PO nightly"),
    ("Metoprolol succinate", "Chemical", P, 0),
    ("25 mg", "Dosage", P, 0),
    ("daily", "Dosage", P, "25 mg PO daily"),
    ("Insulin glargine", "Chemical", P, 0),
    ("20 units", "Dosage", P, 0),
    ("nightly", "Dosage", P, "subcut nightly"),
    ("Acetaminophen", "Chemical", P, 0),
    ("650 mg q6h p.r.n.", "Dosage", P, 0),
    ("pain", "Symptom", P, 0),
    ("3 g/day", "Dosage", P, 0),
    ("Albuterol", "Chemical", P, 0),
    ("2 puffs q4-6h p.r.n.", "Dosage", P, 0),
    ("wheezing", "Symptom", P, 0),
    ("Furosemide", "Chemical", P, 0),
    ("40 mg", "Dosage", P, "Furosemide 40 mg"),
    ("q8h", "Dosage", P, "IV q8h"),
    ("40 mg", "Dosage", P, "then 40 mg"),
    ("daily", "Dosage", P, "then 40 mg PO daily"),
    ("Warfarin", "Chemical", P, 0),
    ("5 mg", "Dosage", P, 0),
    ("daily", "Dosage", P, "5 mg PO daily;"),
    ("INR", "Test", P, 0),
    ("2.0-3.0", "LabValue", P, 0),
    ("Ondansetron", "Chemical", P, 0),
    ("4 mg", "Dosage", P, 0),
    ("q8h p.r.n.", "Dosage", P, 0),
    ("nausea", "Symptom", P, 0),
    ("ibuprofen", "Chemical", NEG, 0),
    ("400 mg", "Dosage", P, 0),
    ("t.i.d.", "Dosage", P, 0),
]

NEGATION_EN = [
    ("epigastric pain", "Symptom", P, 0),
    ("epigastric", "Anatomy", P, "epigastric pain"),
    ("chest pain", "Symptom", NEG, 0),
    ("chest", "Anatomy", P, "chest pain"),
    ("shortness of breath", "Symptom", NEG, 0),
    ("palpitations", "Symptom", NEG, 0),
    ("fever", "Symptom", NEG, 0),
    ("chills", "Symptom", NEG, 0),
    ("rash", "Symptom", NEG, 0),
    ("hematemesis", "Symptom", NEG, 0),
    ("melena", "Symptom", NEG, 0),
    ("ibuprofen", "Chemical", NEG, 0),
    ("aspirin", "Chemical", NEG, 0),
    ("headache", "Symptom", NEG, 0),
    ("dizziness", "Symptom", NEG, 0),
    ("syncope", "Symptom", NEG, 0),
    ("nausea", "Symptom", P, 0),
    ("Abdomen", "Anatomy", P, 0),
    ("soft", "LabValue", P, 0),
    ("epigastric tenderness", "Symptom", P, 0),
    ("epigastric", "Anatomy", P, "epigastric tenderness"),
    ("rebound tenderness", "Symptom", NEG, 0),
    ("jaundice", "Symptom", NEG, 0),
    ("murmurs", "Symptom", NEG, 0),
    ("auscultation", "Test", P, 0),
    ("Lipase", "Test", P, 0),
    ("within normal limits", "LabValue", P, 0),
    ("Hemoglobin", "Test", P, 0),
    ("14.1 g/dL", "LabValue", P, 0),
    ("Troponin", "Test", P, 0),
    ("negative", "LabValue", P, 0),
    ("Gastritis", "Disease", P, 0),
    ("peptic ulcer disease", "Disease", POS, 0),
    ("Acute coronary syndrome", "Disease", NEG, 0),
    ("Pancreatitis", "Disease", POS, 0),
    ("Omeprazole", "Chemical", P, 0),
    ("20 mg", "Dosage", P, 0),
    ("once daily", "Dosage", P, 0),
    ("Helicobacter pylori breath test", "Test", P, 0),
    ("Helicobacter pylori", "Species", P, 0),
]

KNEE_EN = [
    ("Left knee pain", "Symptom", P, 0),
    ("Left knee", "Anatomy", P, "Left knee pain"),
    ("left knee pain", "Symptom", P, 0),
    ("left knee", "Anatomy", P, "left knee pain"),
    ("swelling", "Symptom", P, 0),
    ("right shoulder stiffness", "Symptom", P, 0),
    ("right shoulder", "Anatomy", P, "right shoulder stiffness"),
    ("low back pain", "Symptom", P, 0),
    ("low back", "Anatomy", P, 0),
    ("locking", "Symptom", NEG, 0),
    ("left knee", "Anatomy", P, "locking of the left knee"),
    ("Left knee effusion", "Symptom", P, 0),
    ("Left knee", "Anatomy", P, "Left knee effusion"),
    ("medial joint line tenderness", "Symptom", P, 0),
    ("medial joint line", "Anatomy", P, 0),
    ("Range of motion", "Test", P, 0),
    ("right shoulder", "Anatomy", P, "motion of the right shoulder"),
    ("reduced", "LabValue", P, 0),
    ("Left knee", "Anatomy", P, "Left knee X-ray"),
    ("X-ray", "Test", P, 0),
    ("joint space narrowing", "Symptom", P, 0),
    ("medial compartment", "Anatomy", P, 0),
    ("MRI", "Test", P, 0),
    ("left knee", "Anatomy", P, "MRI of the left knee"),
    ("tear", "Symptom", P, "a tear of"),
    ("medial meniscus", "Anatomy", P, "tear of the medial meniscus"),
    ("Osteoarthritis", "Disease", P, 0),
    ("left knee", "Anatomy", P, "Osteoarthritis of the left knee"),
    ("medial meniscus tear", "Symptom", P, 0),
    ("medial meniscus", "Anatomy", P, "medial meniscus tear"),
    ("Adhesive capsulitis", "Disease", P, 0),
    ("right shoulder", "Anatomy", P, "capsulitis of the right shoulder"),
    ("Naproxen", "Chemical", P, 0),
    ("500 mg", "Dosage", P, 0),
    ("b.i.d.", "Dosage", P, 0),
    ("Physical therapy", "Procedure", P, 0),
    ("Arthroscopic partial meniscectomy", "Procedure", P, 0),
    ("knee pain", "Symptom", P, "the knee pain persists"),
    ("knee", "Anatomy", P, "the knee pain persists"),
]

DISCHARGE_ZH = [
    ("社区获得性肺炎", "Disease", P, 0),
    ("2型糖尿病", "Disease", P, 0),
    ("发热", "Symptom", P, 0),
    ("咳嗽", "Symptom", P, 0),
    ("咳痰", "Symptom", P, 0),
    ("体温最高39.2℃", "Symptom", P, 0),
    ("体温", "Test", P, 0),
    ("胸闷", "Symptom", P, 0),
    ("胸", "Anatomy", P, "胸闷"),
    ("气促", "Symptom", P, 0),
    ("胸痛", "Symptom", NEG, 0),
    ("胸", "Anatomy", P, "胸痛"),
    ("咯血", "Symptom", NEG, 0),
    ("高血压", "Disease", HIST, 0),
    ("肺癌", "Disease", FAM, 0),
    ("右下肺可闻及湿啰音", "Symptom", P, 0),
    ("右下肺", "Anatomy", P, "右下肺可闻及"),
    ("双下肢", "Anatomy", P, 0),
    ("水肿", "Symptom", NEG, 0),
    ("血常规", "Test", P, 0),
    ("白细胞计数15.6×10^9/L", "Symptom", P, 0),
    ("白细胞计数", "Test", P, 0),
    ("C反应蛋白升高", "Symptom", P, 0),
    ("C反应蛋白", "Test", P, 0),
    ("胸部CT", "Procedure", P, 0),
    ("右下肺炎", "Disease", P, 0),
    ("痰培养", "Procedure", P, 0),
    ("肺炎链球菌", "Microorganism", P, 0),
    ("头孢曲松", "Chemical", P, 0),
    ("静脉滴注", "Procedure", P, 0),
    ("胰岛素", "Chemical", P, 0),
    ("皮下注射", "Procedure", P, 0),
    ("鼻导管吸氧", "Procedure", P, 0),
    ("口服", "Procedure", P, 0),
    ("阿莫西林克拉维酸钾", "Chemical", P, 0),
    ("呼吸内科", "Department", P, 0),
]

OUTPATIENT_ZH = [
    ("心内科", "Department", P, 0),
    ("胸闷", "Symptom", P, "胸闷、心悸2周"),
    ("胸", "Anatomy", P, "胸闷、心悸2周"),
    ("心悸", "Symptom", P, "心悸2周"),
    ("心", "Anatomy", P, "心悸2周"),
    ("胸闷", "Symptom", P, "出现胸闷"),
    ("胸", "Anatomy", P, "出现胸闷"),
    ("心悸", "Symptom", P, "、心悸，"),
    ("心", "Anatomy", P, "、心悸，"),
    ("头晕", "Symptom", P, 0),
    ("头", "Anatomy", P, "头晕"),
    ("晕厥", "Symptom", NEG, 0),
    ("发热", "Symptom", NEG, 0),
    ("胸痛", "Symptom", NEG, 0),
    ("胸", "Anatomy", P, "胸痛"),
    ("房颤", "Disease", HIST, 0),
    ("射频消融术", "Procedure", HIST, 0),
    ("心脏起搏器", "Equipment", P, 0),
    ("冠心病", "Disease", FAM, "父亲有冠心病"),
    ("血压150/90mmHg", "Symptom", P, 0),
    ("血压", "Test", P, "血压150"),
    ("心率110次/分", "Symptom", P, 0),
    ("心率", "Test", P, 0),
    ("心律绝对不齐", "Symptom", P, 0),
    ("心律", "Test", P, 0),
    ("双肺", "Anatomy", P, 0),
    ("干湿啰音", "Symptom", NEG, 0),
    ("双下肢轻度水肿", "Symptom", P, 0),
    ("双下肢", "Anatomy", P, 0),
    ("心电图", "Procedure", P, "心电图示"),
    ("心房颤动", "Disease", P, "心电图示心房颤动"),
    ("心脏彩超", "Procedure", P, 0),
    ("左心房增大", "Symptom", P, 0),
    ("左心房", "Anatomy", P, 0),
    ("甲状腺功能", "Test", P, 0),
    ("心房颤动", "Disease", P, "诊断：心房颤动"),
    ("高血压病2级", "Disease", P, 0),
    ("冠心病", "Disease", POS, "冠心病待排"),
    ("口服", "Procedure", P, 0),
    ("美托洛尔", "Chemical", P, 0),
    ("华法林", "Chemical", P, 0),
    ("INR", "Test", P, 0),
    ("动态心电图检查", "Procedure", P, 0),
    ("冠状动脉造影", "Procedure", P, 0),
]

# gold file stem -> (note, language, spec)
CLINICAL = {
    "discharge_en": ("note_discharge_en.txt", "en", DISCHARGE_EN),
    "radiology_en": ("note_radiology_en.txt", "en", RADIOLOGY_EN),
    "medications_en": ("note_medications_en.txt", "en", MEDICATIONS_EN),
    "negation_en": ("note_negation_en.txt", "en", NEGATION_EN),
    "knee_en": ("note_knee_en.txt", "en", KNEE_EN),
    "discharge_zh": ("note_discharge_zh.txt", "zh", DISCHARGE_ZH),
    "outpatient_zh": ("note_outpatient_zh.txt", "zh", OUTPATIENT_ZH),
}
CLINICAL_TYPES = {
    "en": {"Disease", "Symptom", "Chemical", "Gene", "Species", "Anatomy", "Procedure", "Test",
           "Dosage", "LabValue"},
    "zh": {"Disease", "Symptom", "Procedure", "Equipment", "Chemical", "Test", "Anatomy",
           "Department", "Microorganism"},
}
ALWAYS_PRESENT = {"Anatomy", "Dosage", "LabValue", "Equipment", "Department"}


def _word_hits(text: str, mention: str) -> list[int]:
    """Start offsets of ``mention`` in ``text`` that do not begin or end inside a word."""
    hits, pos = [], text.find(mention)
    while pos >= 0:
        end = pos + len(mention)
        left_ok = not (mention[0].isalnum() and pos > 0 and text[pos - 1].isalnum())
        right_ok = not (mention[-1].isalnum() and end < len(text) and text[end].isalnum())
        if left_ok and right_ok:
            hits.append(pos)
        pos = text.find(mention, pos + 1)
    return hits


def locate(text: str, mention: str, where, lang: str) -> int:
    """Start offset of a clinical-note mention; see the spec lists above."""
    if isinstance(where, str):
        if text.count(where) != 1:
            raise ValueError(f"context {where!r} occurs {text.count(where)} times, not once")
        inside = where.find(mention)
        if inside < 0:
            raise ValueError(f"context {where!r} does not hold {mention!r}")
        return text.find(where) + inside
    hits = _word_hits(text, mention) if lang == "en" else \
        [i for i in range(len(text)) if text.startswith(mention, i)]
    if where >= len(hits):
        raise ValueError(f"{mention!r} occurs {len(hits)} times, fewer than {where + 1}")
    return hits[where]


def build_clinical(doc_id: str) -> "Document":
    """The gold document of one clinical note (no file is written)."""
    sys.path.insert(0, str(HERE.parent))
    from biotag.runtime.document import Document

    note, lang, spec = CLINICAL[doc_id]
    text = (HERE / note).read_text(encoding="utf-8")
    doc = Document(doc_id, text, [], lang, {"source": "synthetic example (biotag)"})
    seen = set()
    for mention, typ, assertion, where in spec:
        if typ not in CLINICAL_TYPES[lang]:
            raise ValueError(f"{doc_id}: {typ} is not a {lang} clinical type")
        if typ in ALWAYS_PRESENT and assertion != P:
            raise ValueError(f"{doc_id}: {mention!r} ({typ}) carries no assertion")
        a = locate(text, mention, where, lang)
        if (a, typ) in seen:
            raise ValueError(f"{doc_id}: {mention!r} ({typ}) annotated twice")
        seen.add((a, typ))
        doc.add(a, a + len(mention), typ, assertion=assertion)
    return doc


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
    for name in CLINICAL:
        d = build_clinical(name)
        write_documents([d], HERE / f"{name}.jsonl", "jsonl")
        print(f"{name}.jsonl: {len(d.entities)} gold entities ({len(d.nested_pairs())} nested pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
