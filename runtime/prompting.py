"""Instructions and token layout shared by training (models/) and inference (runtime/).

A tagging example is: ``<bos> header Text:<words> \\nAnswer:<prefix> <output units>``. Words are
rendered one by one: a CJK character as itself, any other word with a leading space, and the token
ids of a sequence are the concatenation of the ids of its pieces, so training and inference see the
same ids whatever the tokenizer would do across word boundaries. Markers are single special tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Sequence

from .codec import CLOSE, FORMAT_P, FORMAT_S, MARKER_TOKENS, OPEN, Span
from .labels import TYPE_ORDER, corpus_types
from .words import is_cjk

# dataset key -> (display name, language); the instruction names the dataset (VANER)
DATASETS: dict[str, tuple[str, str]] = {
    "ncbi-disease": ("NCBI-disease", "en"),
    "bc5cdr": ("BC5CDR", "en"),
    "bc2gm": ("BC2GM", "en"),
    "jnlpba": ("JNLPBA", "en"),
    "genia": ("GENIA", "en"),
    "linnaeus": ("LINNAEUS", "en"),
    "s800": ("S800", "en"),
    "cmeee": ("CMeEE", "zh"),
    "cmedqaner": ("cMedQANER", "zh"),
    "cehrner": ("cEHRNER", "zh"),
    "conll2003": ("CoNLL-2003", "en"),
    "maccrobat2020": ("MACCROBAT2020", "en"),
    "chia": ("CHIA", "en"),
    "dictionary-en": ("dictionary", "en"),
    "dictionary-zh": ("dictionary", "zh"),
    "profile-en": ("biotag English", "en"),     # all English types at once (runtime.profiles)
    "profile-zh": ("biotag Chinese", "zh"),
}

# the longest run of outermost entities in a row, each starting at the word where the previous one
# ends, in any sentence of the dataset's training split (word-level, as the model sees it). The
# decoder allows no longer run: a greedy decoder can fall into a loop that tags every word that
# follows ("[NF-E2] [,] [a] [heterodimeric] ..."). Measured with
# `python -m biotag.models.llm_data adjacency`; tests/test_decoder_guard.py checks it on the data.
MAX_ADJACENT: dict[str, int] = {
    "ncbi-disease": 2, "bc5cdr": 2, "bc2gm": 3, "jnlpba": 3, "genia": 3, "linnaeus": 2, "s800": 2,
    "cmeee": 8, "cmedqaner": 4, "cehrner": 4, "conll2003": 5, "maccrobat2020": 3, "chia": 4,
    # a profile pass tags every type of its language at once: the largest cap of that language
    "profile-en": 4, "profile-zh": 8,
}


def max_adjacent_run(dataset: str) -> int:
    """The decoder's cap on adjacent outermost spans for a dataset's instruction (an unknown
    dataset gets the largest cap of any training set)."""
    return MAX_ADJACENT.get(dataset, max(MAX_ADJACENT.values()))


def render_word(word: str) -> str:
    """The text piece a word contributes to the model's input."""
    return word if len(word) == 1 and is_cjk(word) else " " + word


# short type definitions for the instruction (the prompt stays short: it is paid on every pass)
SHORT_DEFS: dict[str, str] = {
    "Disease": "disease", "Chemical": "chemical/drug", "Gene": "gene/protein", "Protein": "protein",
    "DNA": "DNA region", "RNA": "RNA", "CellType": "cell type", "CellLine": "cell line",
    "Species": "organism", "Anatomy": "body part", "Symptom": "symptom/sign",
    "Procedure": "procedure/treatment", "Test": "test item", "Equipment": "device",
    "Department": "department", "Microorganism": "microbe", "Population": "population",
    "Physiology": "physiology", "Feature": "feature", "Time": "time", "Imaging": "imaging exam",
    "Person": "person", "Location": "place", "Organization": "organization", "Misc": "other name",
    "Dosage": "dose/route/frequency", "LabValue": "test result value",
}


def instruction(dataset: str, types: Sequence[str]) -> str:
    """VANER-style instruction: the dataset's name and its types with a short definition."""
    name = DATASETS.get(dataset, (dataset, ""))[0]
    defs = ", ".join(t if SHORT_DEFS.get(t, t).lower() == t.lower() else f"{t} ({SHORT_DEFS[t]})" for t in types)
    return f"Dataset: {name}. Types: {defs}.\nText:"


ANSWER = "\nAnswer:"


@dataclass(frozen=True)
class Task:
    """What to tag: a dataset style, its types and the tag format."""

    dataset: str
    types: tuple[str, ...]
    fmt: str = FORMAT_S

    @classmethod
    def for_corpus(cls, corpus: str, fmt: str = FORMAT_S) -> "Task":
        from .profiles import is_profile, profile_types

        if is_profile(corpus):
            return cls(corpus, profile_types(corpus), fmt)
        return cls(corpus, tuple(corpus_types(corpus)), fmt)

    def passes(self) -> list[tuple[tuple[str, ...], str]]:
        """(types, answer prefix) per model pass: one pass in format S, one per type in P."""
        if self.fmt == FORMAT_S:
            return [(self.types, "")]
        return [((t,), f" {t}:") for t in self.types]


def trained_marker_units(bundle_dir) -> dict[str, int] | None:
    """The marker units a bundle's model has trained rows for, with their token ids: ``marker_ids``
    of the bundle's adapter ``config.json``. A model trained before a type was appended to the
    canonical types has no row for that type's opener, so the type is not offered to it. None when
    the bundle has no adapter config (every marker of this build is taken as trained)."""
    from .bundle import adapter_config

    ids = adapter_config(bundle_dir).get("marker_ids")
    if not isinstance(ids, dict) or not ids:
        return None
    return {u: i for u, i in ids.items() if isinstance(u, str) and type(i) is int}


class TokenTable:
    """Token ids of words and markers, from one tokenizer function (llama.cpp's, see llm.py).

    ``tokenize(text: str, special: bool) -> list[int]`` must not add BOS.

    ``units``: the marker units the model has trained rows for (:func:`trained_marker_units`;
    with a dict the token ids must be the ones this tokenizer gives); None: every marker of this
    build. A type whose opener is not among them, or is not a single token for this tokenizer, is
    not available (:attr:`types`): the decoder never offers it."""

    def __init__(self, tokenize: Callable[[str, bool], list[int]], bos_id: int,
                 units: Iterable[str] | dict[str, int] | None = None):
        self._tok = tokenize
        self.bos_id = bos_id
        self.marker_ids: dict[str, int] = {}
        wanted = None if units is None else set(units)
        for unit, text in MARKER_TOKENS.items():
            required = unit in (OPEN, CLOSE)
            if wanted is not None and unit not in wanted and not required:
                continue
            ids = tokenize(text, True)
            if len(ids) != 1:
                if required:
                    raise ValueError(f"marker {text} is not a single token for this tokenizer")
                continue
            if isinstance(units, dict) and unit in units and units[unit] != ids[0]:
                raise ValueError(f"marker {unit!r} is token {ids[0]} ({text}) for this tokenizer, "
                                 f"but the model was trained with it as token {units[unit]}")
            self.marker_ids[unit] = ids[0]
        self.unit_of_id = {v: k for k, v in self.marker_ids.items()}
        # the canonical types this model can tag (an opener marker each), in TYPE_ORDER
        self.types: tuple[str, ...] = tuple(t for t in TYPE_ORDER if OPEN + t in self.marker_ids)
        self.word_ids = lru_cache(maxsize=200_000)(self._word_ids)
        self.text_ids = lru_cache(maxsize=4096)(self._text_ids)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = tuple(self._tok(render_word(word), False))
        if not ids:  # a character the tokenizer drops: keep one unknown-ish piece so copying works
            ids = tuple(self._tok(" ", False)) or (self.bos_id,)
        return ids

    def _text_ids(self, text: str) -> tuple[int, ...]:
        return tuple(self._tok(text, False))

    def has_type(self, t: str) -> bool:
        return OPEN + t in self.marker_ids

    def opener_id(self, t: str | None) -> int:
        unit = OPEN if t is None else OPEN + t
        if unit not in self.marker_ids:
            raise ValueError(f"this model has no marker for entity type {t!r} "
                             f"(its types: {', '.join(self.types)})")
        return self.marker_ids[unit]

    @property
    def close_id(self) -> int:
        return self.marker_ids[CLOSE]

    def prompt_ids(self, task: Task, words: Sequence[str], types: Sequence[str], prefix: str) -> list[int]:
        ids = [self.bos_id, *self.text_ids(instruction(task.dataset, types))]
        for w in words:
            ids.extend(self.word_ids(w))
        ids.extend(self.text_ids(ANSWER + prefix))
        return ids


def target_units(words: Sequence[str], spans: Sequence[Span], fmt: str, pass_type: str | None):
    """The output of one pass as a list of ("word", i) / ("open", type) / ("close", None) steps."""
    from .codec import encodable, _nest_order  # noqa: PLC2701 - same package

    chosen = [s for s in spans if fmt == FORMAT_S or s.type == pass_type]
    kept, _ = encodable(chosen, fmt)
    opens: dict[int, list[Span]] = {}
    for s in _nest_order(kept):
        opens.setdefault(s.start, []).append(s)
    steps: list[tuple[str, object]] = []
    stack: list[Span] = []
    for i in range(len(words) + 1):
        while stack and stack[-1].end == i:
            stack.pop()
            steps.append(("close", None))
        if i == len(words):
            break
        for s in opens.get(i, []):
            stack.append(s)
            steps.append(("open", s.type if fmt == FORMAT_S else None))
        steps.append(("word", i))
    return steps
