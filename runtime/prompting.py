"""Instructions and token layout shared by training (models/) and inference (runtime/).

A tagging example is: ``<bos> header Text:<words> \\nAnswer:<prefix> <output units>``. Words are
rendered one by one: a CJK character as itself, any other word with a leading space, and the token
ids of a sequence are the concatenation of the ids of its pieces, so training and inference see the
same ids whatever the tokenizer would do across word boundaries. Markers are single special tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from .codec import CLOSE, FORMAT_P, FORMAT_S, MARKER_TOKENS, OPEN, Span
from .labels import corpus_types
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
    "dictionary-en": ("dictionary", "en"),
    "dictionary-zh": ("dictionary", "zh"),
}

# the longest run of outermost entities in a row, each starting at the word where the previous one
# ends, in any sentence of the dataset's training split (word-level, as the model sees it). The
# decoder allows no longer run: a greedy decoder can fall into a loop that tags every word that
# follows ("[NF-E2] [,] [a] [heterodimeric] ..."). Measured with
# `python -m biotag.models.llm_data adjacency`; tests/test_decoder_guard.py checks it on the data.
MAX_ADJACENT: dict[str, int] = {
    "ncbi-disease": 2, "bc5cdr": 2, "bc2gm": 3, "jnlpba": 3, "genia": 3, "linnaeus": 2, "s800": 2,
    "cmeee": 8, "cmedqaner": 4, "cehrner": 4, "conll2003": 5,
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
        return cls(corpus, tuple(corpus_types(corpus)), fmt)

    def passes(self) -> list[tuple[tuple[str, ...], str]]:
        """(types, answer prefix) per model pass: one pass in format S, one per type in P."""
        if self.fmt == FORMAT_S:
            return [(self.types, "")]
        return [((t,), f" {t}:") for t in self.types]


class TokenTable:
    """Token ids of words and markers, from one tokenizer function (llama.cpp's, see llm.py).

    ``tokenize(text: str, special: bool) -> list[int]`` must not add BOS."""

    def __init__(self, tokenize: Callable[[str, bool], list[int]], bos_id: int):
        self._tok = tokenize
        self.bos_id = bos_id
        self.marker_ids: dict[str, int] = {}
        for unit, text in MARKER_TOKENS.items():
            ids = tokenize(text, True)
            if len(ids) != 1:
                raise ValueError(f"marker {text} is not a single token for this tokenizer")
            self.marker_ids[unit] = ids[0]
        self.unit_of_id = {v: k for k, v in self.marker_ids.items()}
        self.word_ids = lru_cache(maxsize=200_000)(self._word_ids)
        self.text_ids = lru_cache(maxsize=4096)(self._text_ids)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = tuple(self._tok(render_word(word), False))
        if not ids:  # a character the tokenizer drops: keep one unknown-ish piece so copying works
            ids = tuple(self._tok(" ", False)) or (self.bos_id,)
        return ids

    def _text_ids(self, text: str) -> tuple[int, ...]:
        return tuple(self._tok(text, False))

    def opener_id(self, t: str | None) -> int:
        return self.marker_ids[OPEN if t is None else OPEN + t]

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
