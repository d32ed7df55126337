"""biotag's canonical entity types and the map from each corpus's own types to them.

The order of CANONICAL_TYPES is part of the model format (each type owns a marker token in tag
format S): only ever append to it.
"""
from __future__ import annotations

# canonical name -> short definition (used in instructions and the GUI legend)
CANONICAL_TYPES: dict[str, str] = {
    "Disease": "a disease, disorder, syndrome or abnormal condition",
    "Chemical": "a chemical compound, drug or medication",
    "Gene": "a gene or gene product (protein, RNA) named in text",
    "Protein": "a protein, protein family, complex, domain or subunit",
    "DNA": "a DNA sequence, gene, promoter, region or element",
    "RNA": "an RNA molecule or transcript (e.g. mRNA)",
    "CellType": "a type of cell (e.g. T lymphocytes, monocytes)",
    "CellLine": "a cultured cell line (e.g. Jurkat cells, HeLa)",
    "Species": "a species or other organism taxon",
    "Anatomy": "a body part, organ, tissue or anatomical location",
    "Symptom": "a symptom, sign or clinical finding",
    "Procedure": "a medical procedure, treatment or surgery",
    "Test": "a laboratory test, examination item or measurement",
    "Equipment": "a medical device or piece of equipment",
    "Department": "a hospital department or medical specialty",
    "Microorganism": "a microorganism such as a bacterium or virus",
    "Population": "a group of people (e.g. infants, pregnant women)",
    "Physiology": "a physiological state or function",
    "Feature": "a feature or property of a symptom or disease (e.g. severity)",
    "Time": "a time expression",
    "Imaging": "an imaging examination (e.g. CT, MRI, ultrasound)",
    "Person": "a person's name",
    "Location": "a location",
    "Organization": "an organization",
    "Misc": "another named entity (nationality, event, work)",
    "Dosage": "a drug dose, strength, route or frequency (e.g. 400 mg, b.i.d.)",
    "LabValue": "a measured value or result of a test (e.g. 7.2 mmol/L, elevated)",
}
TYPE_ORDER: list[str] = list(CANONICAL_TYPES)

# corpus -> {original type -> canonical type}; injective within each corpus
LABEL_MAP: dict[str, dict[str, str]] = {
    "ncbi-disease": {"Disease": "Disease"},
    "bc5cdr": {"Chemical": "Chemical", "Disease": "Disease"},
    "bc2gm": {"GENE": "Gene"},
    "jnlpba": {"protein": "Protein", "DNA": "DNA", "RNA": "RNA", "cell_type": "CellType",
               "cell_line": "CellLine"},
    "genia": {"protein": "Protein", "DNA": "DNA", "RNA": "RNA", "cell_type": "CellType",
              "cell_line": "CellLine"},
    "linnaeus": {"Species": "Species"},
    "s800": {"Species": "Species", "": "Species"},
    "cmeee": {"dis": "Disease", "sym": "Symptom", "pro": "Procedure", "equ": "Equipment",
              "dru": "Chemical", "ite": "Test", "bod": "Anatomy", "dep": "Department",
              "mic": "Microorganism"},
    "cmedqaner": {"disease": "Disease", "body": "Anatomy", "symptom": "Symptom",
                  "treatment": "Procedure", "crowd": "Population", "drug": "Chemical",
                  "test": "Test", "physiology": "Physiology", "feature": "Feature", "time": "Time",
                  "department": "Department"},
    "cehrner": {"解剖部位": "Anatomy", "疾病和诊断": "Disease", "症状": "Symptom", "药物": "Chemical",
                "实验室检验": "Test", "手术": "Procedure", "影像检查": "Imaging"},
    "conll2003": {"PER": "Person", "LOC": "Location", "ORG": "Organization", "MISC": "Misc"},
    "anatem": {"Anatomy": "Anatomy"},
    # clinical corpora: only these types are read (docs/clinical_types.md gives the reasons)
    "maccrobat2020": {"Disease_disorder": "Disease", "Sign_symptom": "Symptom",
                      "Biological_structure": "Anatomy", "Medication": "Chemical",
                      "Therapeutic_procedure": "Procedure", "Diagnostic_procedure": "Test",
                      "Dosage": "Dosage", "Lab_value": "LabValue"},
    "chia": {"Condition": "Disease", "Drug": "Chemical", "Procedure": "Procedure",
             "Measurement": "Test", "Value": "LabValue"},
}


def canonical(corpus: str, original: str) -> str:
    """Canonical type for a corpus's own type; unknown types pass through unchanged."""
    return LABEL_MAP.get(corpus, {}).get(original, original)


def corpus_types(corpus: str) -> list[str]:
    """Canonical types a corpus annotates, in TYPE_ORDER."""
    vals = set(LABEL_MAP.get(corpus, {}).values())
    return [t for t in TYPE_ORDER if t in vals]
