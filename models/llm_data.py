"""Training examples for the tagging LLM: corpora -> (task, words, word spans) -> token sequences.

One bilingual mixture (VANER-style instructions naming the dataset and its types), optional
CoNLL-2003 auxiliary examples (GERBERA) and dense-entity dictionary examples (VANER DBR).
No torch here: the sequences are plain lists, so tests and the runtime can share them.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from biotag.runtime.codec import FORMAT_S, MAX_DEPTH, Span, _nest_order  # noqa: PLC2701
from biotag.runtime.decoding import marker_choices
from biotag.runtime.document import Document
from biotag.runtime.prompting import Task, TokenTable, target_units
from biotag.runtime.segment import sentence_spans  # noqa: F401  (re-exported for training code)
from biotag.runtime.words import char_span_to_words, segment_words, snap_span_to_words


@dataclass
class Example:
    """One sentence to tag under one task."""

    task: Task
    words: list[str]
    spans: list[Span]
    source: str = ""
    # partial labels: the types whose openers are candidates at each decision (None: the task's
    # types). A profile example from one corpus allows only the types that corpus annotates.
    allowed: tuple[str, ...] | None = None
    # with partial labels: at a decision where the gold opens an entity, the openers of every type
    # compete (a span has one type under the profile: the corpus's entity says what opens here is
    # not another type). Without it nothing teaches "not Anatomy" at a disease mention.
    compete_at_openings: bool = False


def profile_example(ex: Example, profile: str, compete_at_openings: bool = False) -> Example | None:
    """The example under a profile instruction (runtime.profiles): spans mapped to profile types,
    openers restricted to the types its corpus annotates (except, with ``compete_at_openings``, where
    the gold opens an entity); None when the corpus has none of them."""
    from biotag.runtime.profiles import to_profile

    allowed = tuple(dict.fromkeys(t for t in (to_profile(profile, x) for x in ex.task.types) if t))
    if not allowed:
        return None
    spans = sorted({Span(s.start, s.end, to_profile(profile, s.type)) for s in ex.spans
                    if to_profile(profile, s.type)})
    return Example(Task.for_corpus(profile, ex.task.fmt), ex.words, spans, ex.source, allowed,
                   compete_at_openings)


@dataclass
class Sequence_:
    """Token ids of one training pass plus the decision points that carry the loss."""

    ids: list[int]
    positions: list[int]          # index in ids whose next-token choice is supervised
    candidates: list[list[int]]   # allowed token ids at that position (copy token first)
    gold: list[int]               # index of the right choice in candidates


def doc_examples(doc: Document, task: Task, counter: Counter | None = None) -> list[Example]:
    """Word-level examples of a document, one per sentence; entity spans snapped to words."""
    out = []
    for a, b in sentence_spans(doc):
        words = segment_words(doc.text[a:b], offset=a)
        if not words:
            continue
        spans = []
        for e in doc.entities:
            if e.start < a or e.end > b or e.type not in task.types:
                continue
            ws = char_span_to_words(words, e.start, e.end)
            if ws is None:
                ws = snap_span_to_words(words, e.start, e.end)
                if counter is not None:
                    counter["snapped"] += 1
            if ws:
                spans.append(Span(ws[0], ws[1], e.type))
        out.append(Example(task, [w.text for w in words], sorted(set(spans)), doc.id))
    return out


def within_depth(spans: Sequence[Span], max_depth: int = MAX_DEPTH) -> list[Span]:
    """The spans the decoder can produce: a span nested deeper than ``max_depth`` (counting the
    spans around it) is left out, as the decoder never offers an opener there."""
    kept, ends = [], []          # ends: end word of each kept span still open at this start
    for sp in _nest_order(spans):      # the codec's order: outer spans before the spans inside them
        while ends and ends[-1] <= sp.start:
            ends.pop()
        if len(ends) >= max_depth:
            continue
        kept.append(sp)
        ends.append(sp.end)
        ends.sort(reverse=True)
    return sorted(kept)


def build_sequence(table: TokenTable, ex: Example, pass_types: Sequence[str], prefix: str,
                   pass_type: str | None) -> Sequence_:
    """Exactly the ids the constrained decoder feeds, with the choice made at each decision.
    Spans nested deeper than the decoder allows are not supervised (``within_depth``)."""
    fmt = ex.task.fmt
    ids = table.prompt_ids(ex.task, ex.words, pass_types, prefix)
    open_types = pass_types if ex.allowed is None else [t for t in pass_types if t in ex.allowed]
    positions, cands, gold = [], [], []
    n = len(ex.words)
    depth, just_opened, i = 0, False, 0
    for kind, val in target_units(ex.words, within_depth(ex.spans), fmt, pass_type):
        if i >= n:
            break  # the closers at the end are forced: not fed, not supervised
        compete = ex.compete_at_openings and kind == "open" and fmt == FORMAT_S
        marks = marker_choices(table, pass_types if compete else open_types, fmt, False, depth, just_opened)
        first = table.word_ids(ex.words[i])[0]
        c = [first] + [m[0] for m in marks]
        if kind == "word":
            g = 0
            tok = list(table.word_ids(ex.words[i]))
            i += 1
            just_opened = False
        elif kind == "open":
            tid = table.opener_id(val if fmt == FORMAT_S else None)
            g = c.index(tid)
            tok = [tid]
            depth += 1
            just_opened = True
        else:
            g = c.index(table.close_id)
            tok = [table.close_id]
            depth -= 1
            just_opened = False
        positions.append(len(ids) - 1)
        cands.append(c)
        gold.append(g)
        ids.extend(tok)
    return Sequence_(ids, positions, cands, gold)


def example_sequences(table: TokenTable, ex: Example) -> list[Sequence_]:
    out = []
    for types, prefix in ex.task.passes():
        if ex.allowed is not None and ex.task.fmt != FORMAT_S and types[0] not in ex.allowed:
            continue   # partial labels: no pass for a type the example's corpus does not annotate
        out.append(build_sequence(table, ex, types, prefix, types[0] if ex.task.fmt != FORMAT_S else None))
    return out


# --- dense-entity dictionary examples (VANER DBR) ---------------------------------------------
def build_gazetteer(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    """term -> {type: count} over gold spans of the training examples."""
    gaz: dict[str, Counter] = defaultdict(Counter)
    for ex in examples:
        for s in ex.spans:
            sep = "" if all(len(w) == 1 and ord(w) > 0x2e80 for w in ex.words[s.start:s.end]) else " "
            term = sep.join(ex.words[s.start:s.end])
            gaz[term][s.type] += 1
    return {t: dict(c) for t, c in gaz.items()}


def save_gazetteer(gaz: dict, path: Path) -> None:
    rows = []
    for term in sorted(gaz):
        for t, c in sorted(gaz[term].items()):
            rows.append(f"{term}\t{t}\t{c}")
    path.write_text("term\ttype\tcount\n" + "\n".join(rows) + "\n", encoding="utf-8")


def dictionary_examples(gaz: dict[str, dict[str, int]], types_by_lang: dict[str, list[str]], n: int,
                        per_example: int = 8, seed: int = 0, fmt: str = FORMAT_S) -> list[Example]:
    """Shuffled dictionary entries joined by ' ; ', every entry tagged with its main type, in the
    run's output format (so a format-P model never sees format-S targets)."""
    rng = random.Random(seed)
    by_lang: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for term, types in gaz.items():
        main = max(types.items(), key=lambda kv: kv[1])[0]
        lang = "zh" if re.search(r"[\u4e00-\u9fff]", term) else "en"
        if main in types_by_lang.get(lang, []):
            by_lang[lang].append((term, main))
    out = []
    for k in range(n):
        lang = "en" if k % 3 else "zh"
        if not by_lang.get(lang):   # a one-language mixture: every example in the language it has
            lang = "zh" if lang == "en" else "en"
        pool = by_lang.get(lang)
        if not pool:
            break
        words, spans = [], []
        for term, t in rng.sample(pool, min(per_example, len(pool))):
            if words:
                words.append(";")
            tw = [w.text for w in segment_words(term)]
            spans.append(Span(len(words), len(words) + len(tw), t))
            words.extend(tw)
        task = Task(f"dictionary-{lang}", tuple(types_by_lang[lang]), fmt)
        out.append(Example(task, words, spans, "dictionary"))
    return out


def adjacency_table(corpora_names: Sequence[str], data_dir=None) -> dict[str, int]:
    """Per dataset, the longest run of adjacent outermost entities in one training sentence
    (word level, the sentences the model is trained on): runtime.prompting.MAX_ADJACENT."""
    from biotag.runtime import corpora
    from biotag.runtime.decoding import longest_adjacent_run

    out = {}
    for name in corpora_names:
        task = Task.for_corpus(name)
        best = 0
        for src in (["cmeee", "cmeee-flat"] if name == "cmeee" else [name]):
            for doc in corpora.load(src, "train", data_dir):
                for ex in doc_examples(doc, task):
                    best = max(best, longest_adjacent_run(ex.spans))
        out[name] = best
    return out


if __name__ == "__main__":   # python -m biotag.models.llm_data adjacency [CORPUS ...]
    import argparse

    ap = argparse.ArgumentParser(prog="python -m biotag.models.llm_data")
    ap.add_argument("what", choices=["adjacency"])
    ap.add_argument("corpora", nargs="*")
    ap.add_argument("--data-dir")
    a = ap.parse_args()
    from biotag.runtime.prompting import MAX_ADJACENT

    print(json.dumps(adjacency_table(a.corpora or list(MAX_ADJACENT), a.data_dir)))
