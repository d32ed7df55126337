"""Profile instructions: one pass that asks for every type of a language at once.

Each corpus annotates only some types, so the per-dataset instructions (VANER) need several passes
to cover a language (one per dataset). A profile instruction names every canonical type of its
language; the model learns it from all corpora at once with partial labels: an example of a corpus
carries only that corpus's entities, and at every decision the choice is made only among the
openers of the types that corpus annotates (``allowed_types``), so an NCBI-disease sentence
teaches "open Disease here" and never "do not open Chemical here".

Per-dataset instructions stay: they define each benchmark's guidelines and fine types.
"""
from __future__ import annotations

from .labels import TYPE_ORDER

PROFILE_EN = "profile-en"
PROFILE_ZH = "profile-zh"

# profile dataset key -> (language, types in the order the instruction lists them)
PROFILE_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    PROFILE_EN: ("en", ("Disease", "Symptom", "Chemical", "Gene", "Species", "CellType", "CellLine",
                        "Anatomy", "Procedure", "Test", "Dosage", "LabValue")),
    # the CMeEE types: the richest Chinese annotation; the other Chinese corpora map onto them
    PROFILE_ZH: ("zh", ("Disease", "Symptom", "Procedure", "Equipment", "Chemical", "Test", "Anatomy",
                        "Department", "Microorganism")),
}

# canonical type of a corpus -> the profile type it is scored and trained as (identity otherwise;
# a type not in the profile is not part of the profile pass)
PROFILE_MAP: dict[str, dict[str, str]] = {
    PROFILE_EN: {"Protein": "Gene", "DNA": "Gene", "RNA": "Gene"},
    PROFILE_ZH: {},
}


# the runtime instructions of a bundle tagging in one pass per segment (``biotag tag --one-pass``)
ONE_PASS: dict[str, list[str]] = {"en": [PROFILE_EN], "zh": [PROFILE_ZH]}


def trained_profiles(bundle_dir) -> bool:
    """Whether a bundle's model learned the profile instructions: its adapter ``config.json`` says
    it trained with a profile share above 0 (a model that never saw them cannot run one pass)."""
    from .bundle import adapter_config

    try:
        return float(adapter_config(bundle_dir)["training_config"]["profile"]["share"]) > 0
    except (KeyError, TypeError, ValueError):
        return False


def profile_for(lang: str) -> str:
    return PROFILE_ZH if lang == "zh" else PROFILE_EN


def profile_types(profile: str) -> tuple[str, ...]:
    """The profile's types that this build knows (a type missing from TYPE_ORDER has no marker)."""
    return tuple(t for t in PROFILE_TYPES[profile][1] if t in TYPE_ORDER)


def to_profile(profile: str, canonical_type: str) -> str | None:
    """The profile type of a corpus's canonical type, or None when the profile does not ask for it."""
    t = PROFILE_MAP.get(profile, {}).get(canonical_type, canonical_type)
    return t if t in profile_types(profile) else None


def is_profile(dataset: str) -> bool:
    return dataset in PROFILE_TYPES
