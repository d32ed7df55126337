"""The one path from text to a Document, used by ``biotag tag``, the desktop app and ``eval-model``.

    pipe = tagger.pipeline                            # or Pipeline(decoder, table, profiles, ...)
    doc = pipe.tag(text, doc_id="note")               # a whole document
    for seg, ents in pipe.iter_segments(text): ...    # segment by segment (live highlighting)

The steps, in order:

1. **segments** with their language (``segment_text``: lines, then sentences; or explicit cuts, the
   gold-sentence diagnostic of ``eval-model``);
2. **words** of each segment and model **windows** over them (at most ``max_words`` words whose text
   fits a third of the context in tokens; over-long words in pieces);
3. model **candidates**: every instruction of the segment's language (the bundle's ``profiles``, or
   a fixed instruction list such as a corpus's own), each window decoded by the copy-constrained
   decoder, its spans mapped back to characters (a span is kept by the window that owns its first
   word; the best confidence of a span seen twice wins);
4. the user **dictionary** (``score``: another candidate; ``force``: kept with score 1);
5. the **selector** scores and the **thresholds** (per instruction and type, else per type, else
   ``*``), or a plain threshold on the model's confidence;
6. each entity's **assertion status** (runtime.assertion);
7. **document assembly**: the segments, the entities, the document's language (the language of most
   of its characters unless one was given) and the bundle's name in ``meta``.

No other module calls the segmenter or maps windows to entities: tests/test_architecture.py checks.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from . import assertion
from .codec import FORMAT_S, Span
from .decoding import ConstrainedDecoder, guard_would_stop, tag_words_scored
from .dictionary import UserDictionary
from .document import Document, Entity, Segment
from .prompting import Task, max_adjacent_run
from .segment import Seg, Window, detect_lang, segment_text, windows
from .words import Word, char_span_to_words, segment_words

DEFAULT_PROFILES = {"en": ["bc5cdr", "bc2gm", "linnaeus", "jnlpba"], "zh": ["cmeee"]}

LONG_WORD = 200    # characters: a longer "word" (a sequence, base64, a URL) goes to the model in
WORD_PIECE = 100   # pieces of this many characters, so that a window always fits the context


@dataclass
class TagOptions:
    types: Sequence[str] | None = None      # keep only these canonical types
    threshold: float | None = None          # overrides the bundle's thresholds
    use_selector: bool = True
    dictionary: UserDictionary | None = None
    dictionary_mode: str = "score"          # "score" (selector decides) or "force"
    assertion: bool = True                  # each entity's assertion status (runtime.assertion)


def threshold_for(thresholds: dict, typ: str, task: str | None = None, default: float = 0.5) -> float:
    """The threshold of (the instruction that produced a candidate, its type), else of its type,
    else the default ("*")."""
    if task and f"{task}/{typ}" in thresholds:
        return thresholds[f"{task}/{typ}"]
    return thresholds.get(typ, thresholds.get("*", default))


def model_windows(words: Sequence[Word], max_words: int = 80, table=None, n_ctx: int | None = None
                  ) -> list[Window]:
    """Windows of at most ``max_words`` words whose text is at most a third of the context in
    tokens (the prompt, the copy and its markers must fit): fewer words per window only where the
    words are long in tokens, and over-long words in pieces. Without a token table (or a context
    size) only the word count limits a window."""
    pieces: list[Word] = []
    for w in words:
        if len(w.text) <= LONG_WORD:
            pieces.append(w)
            continue
        for k in range(0, len(w.text), WORD_PIECE):
            t = w.text[k:k + WORD_PIECE]
            pieces.append(Word(t, w.start + k, w.start + k + len(t)))
    budget = max(64, (n_ctx - 256) // 3) if n_ctx else None
    mw = max_words
    while True:
        wins = windows(pieces, mw, overlap=min(16, mw // 4))
        if mw <= 1 or table is None or budget is None or all(
                sum(len(table.word_ids(w.text)) for w in win.words) <= budget for win in wins):
            return wins
        mw //= 2


class DocumentAssembly:
    """A Document built from tagged segments as they arrive (``add``), complete or not."""

    def __init__(self, text: str, doc_id: str = "doc", lang: str | None = None, bundle: str = "",
                 assertion_on: bool = True):
        self.text, self.doc_id, self.lang = text, doc_id, lang
        self.bundle, self.assertion_on = bundle, assertion_on
        self.entities: list[Entity] = []
        self.segments: list[Segment] = []
        self._chars: dict[str, int] = {}

    def add(self, seg: Seg, ents: Iterable[Entity]) -> None:
        self.segments.append(Segment(seg.start, seg.end))
        self._chars[seg.lang] = self._chars.get(seg.lang, 0) + (seg.end - seg.start)
        self.entities.extend(ents)

    @property
    def done_chars(self) -> int:
        return self.segments[-1].end if self.segments else 0

    def document(self) -> Document:
        lang = self.lang or (max(self._chars, key=self._chars.get) if self._chars else None)
        meta = {"bundle": self.bundle}
        if self.assertion_on:
            meta["assertion_rules"] = assertion.rules_version()
        return Document(self.doc_id, self.text, list(self.entities), lang, meta, list(self.segments))


class Pipeline:
    """Text -> Document through one model (a copy-constrained decoder and its token table), an
    optional selector and its thresholds. ``instructions``: a fixed list of instruction names used
    for every segment (``eval-model``'s corpus instruction); None: the bundle's ``profiles`` for the
    segment's language."""

    GROUP = 8   # segments tagged together, task by task (instruction KV reuse); the first goes alone

    def __init__(self, decoder: ConstrainedDecoder, table=None, profiles: dict[str, list[str]] | None = None,
                 fmt: str = FORMAT_S, selector=None, thresholds: dict[str, float] | None = None,
                 fusion: str = "selector", max_words: int = 80, n_ctx: int | None = None,
                 bundle: str = "custom 0", instructions: Sequence[str] | None = None):
        self.decoder = decoder
        # no decoder: a pipeline that only segments and windows (what the adjacency guard can change)
        self.table = table if table is not None else getattr(decoder, "table", None)
        self.profiles = profiles or DEFAULT_PROFILES
        self.fmt = fmt
        self.selector = selector
        self.thresholds = thresholds or {}
        self.fusion = fusion
        self.max_words = max_words
        self.n_ctx = n_ctx
        self.bundle = bundle
        self.instructions = list(instructions) if instructions else None

    def with_instructions(self, instructions: Sequence[str] | None) -> "Pipeline":
        """The same pipeline (same model, selector, thresholds) with a fixed instruction list."""
        p = copy.copy(self)
        p.instructions = list(instructions) if instructions else None
        return p

    # --- instructions -----------------------------------------------------------------------
    def tasks_for(self, lang: str, types: Sequence[str] | None = None) -> list[Task]:
        names = self.instructions or self.profiles.get(lang, self.profiles.get("en", []))
        tasks = [Task.for_corpus(d, self.fmt) for d in names]
        # only the types the model has markers for (the instruction names no other)
        tasks = [Task(t.dataset, tuple(x for x in t.types if self.table.has_type(x)), t.fmt) for t in tasks]
        tasks = [t for t in tasks if t.types]
        if types:
            want = set(types)
            tasks = [Task(t.dataset, tuple(x for x in t.types if x in want), t.fmt) for t in tasks]
            tasks = [t for t in tasks if t.types]
        return tasks

    def tagged_types(self) -> list[str]:
        """The canonical types the instructions ask for, in any language."""
        from .labels import TYPE_ORDER

        have = {t for lang in self.profiles for task in self.tasks_for(lang, None) for t in task.types}
        return [t for t in TYPE_ORDER if t in have] + sorted(have - set(TYPE_ORDER))

    # --- 1-2: segments, words, windows ------------------------------------------------------
    def segments(self, text: str, lang: str | None = None,
                 cuts: Sequence[tuple[int, int]] | None = None) -> list[Seg]:
        """The segments of ``text`` with their language; ``cuts``: explicit (start, end) segments
        instead of the shipped segmenter (the gold-sentence diagnostic)."""
        if cuts is None:
            return segment_text(text, lang)
        return [Seg(a, b, lang or detect_lang(text[a:b])) for a, b in cuts if b > a]

    def words(self, text: str, seg: Seg) -> list[Word]:
        return segment_words(text[seg.start:seg.end], offset=seg.start)

    def windows(self, words: Sequence[Word]) -> list[Window]:
        return model_windows(words, self.max_words, self.table, self.n_ctx)

    # --- 3: model candidates ----------------------------------------------------------------
    def candidates(self, text: str, words: Sequence[Word], task: Task, found: dict) -> None:
        """The model's spans of one instruction over a segment's words, as entities in ``found``
        (key -> entity; the best confidence of a span seen twice wins)."""
        for win in self.windows(words):
            ws = [w.text for w in win.words]
            for sp, p in tag_words_scored(self.decoder, task, ws).items():
                if not (win.own_start <= sp.start < win.own_end):
                    continue
                a, b = win.words[sp.start].start, win.words[sp.end - 1].end
                key = (a, b, sp.type)
                if key not in found or (found[key].score or 0) < p:
                    found[key] = Entity(a, b, sp.type, text[a:b], round(p, 4), "model",
                                        {"task": task.dataset})

    def tag_group(self, text: str, segs: Sequence[Seg], opts: TagOptions) -> list[list[Entity]]:
        """Entities of consecutive segments. Task by task over the whole group, so consecutive
        passes share the instruction and llama.cpp reuses its KV cache for it."""
        words = [self.words(text, seg) for seg in segs]
        tasks = [self.tasks_for(seg.lang, opts.types) for seg in segs]
        found: list[dict] = [{} for _ in segs]
        order: list[str] = []
        for ts in tasks:
            order.extend(t.dataset for t in ts if t.dataset not in order)
        for name in order:
            for k, ts in enumerate(tasks):
                for task in ts:
                    if task.dataset == name:
                        self.candidates(text, words[k], task, found[k])
        return [self.select(text, words[k], found[k], opts) for k in range(len(segs))]

    # --- 4-6: dictionary, selector, thresholds, assertion -----------------------------------
    def select(self, text: str, words, found: dict, opts: TagOptions) -> list[Entity]:
        """Dictionary candidates, selector scores and thresholds on top of the model's candidates,
        then each kept entity's assertion status."""
        cands = list(found.values())
        forced: list[Entity] = []
        if opts.dictionary is not None:
            for e in opts.dictionary.match(text, words):
                if opts.types and e.type not in opts.types:
                    continue
                if opts.dictionary_mode == "force":
                    forced.append(e.with_(score=1.0))
                elif e.key not in found:
                    cands.append(e)
        if self.selector is not None and opts.use_selector and cands:
            from .selector import fuse

            scores = self.selector.score(text, cands)
            # score: what the threshold is compared with (the selector's probability, fused with the
            # LLM's confidence when the bundle says so); meta "threshold": the bundle's own threshold
            # for this candidate (what a GUI applies by default when it keeps every candidate)
            cands = [e.with_(score=round(fuse(s, e.score, self.fusion), 4),
                             meta={**e.meta, "llm_score": e.score, "selector_score": round(float(s), 4),
                                   "threshold": threshold_for(self.thresholds, e.type, e.meta.get("task"))})
                     for e, s in zip(cands, scores)]
            cands = [e for e in cands if e.score >= (opts.threshold if opts.threshold is not None
                                                     else e.meta["threshold"])]
        elif opts.threshold is not None:
            cands = [e for e in cands if e.score is None or e.score >= opts.threshold]
        keys = {e.key for e in forced}
        out = forced + [e for e in cands if e.key not in keys]
        # assertion status after selection: negated, possible, historical or family
        return assertion.annotate_entities(text, out) if opts.assertion else out

    # --- 7: streaming and assembly ----------------------------------------------------------
    def iter_segments(self, text: str, lang: str | None = None, opts: TagOptions | None = None,
                      cuts: Sequence[tuple[int, int]] | None = None) -> Iterator[tuple[Seg, list[Entity]]]:
        """Segments and their entities as they are tagged (for streaming UIs): the first segment
        alone (first results fast), then groups of ``GROUP``."""
        opts = opts or TagOptions()
        group: list[Seg] = []
        size = 1
        for seg in self.segments(text, lang, cuts):
            group.append(seg)
            if len(group) >= size:
                yield from zip(group, self.tag_group(text, group, opts))
                group, size = [], self.GROUP
        if group:
            yield from zip(group, self.tag_group(text, group, opts))

    def assembly(self, text: str, doc_id: str = "doc", lang: str | None = None,
                 opts: TagOptions | None = None) -> DocumentAssembly:
        return DocumentAssembly(text, doc_id, lang, self.bundle, (opts or TagOptions()).assertion)

    def tag(self, text: str, lang: str | None = None, doc_id: str = "doc", opts: TagOptions | None = None,
            on_progress: Callable[[str, int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None,
            cuts: Sequence[tuple[int, int]] | None = None) -> Document | None:
        """The Document of ``text``. ``on_progress(doc_id, characters done, characters in all)``
        after each segment; ``cancelled()`` is asked after each segment, and a True answer stops
        the document (None is returned)."""
        doc = self.assembly(text, doc_id, lang, opts)
        for seg, es in self.iter_segments(text, lang, opts, cuts):
            doc.add(seg, es)
            if cancelled is not None and cancelled():
                return None
            if on_progress is not None and seg.end < len(text):
                on_progress(doc_id, seg.end, len(text))
        if on_progress is not None:
            on_progress(doc_id, len(text), len(text))
        return doc.document()

    def tag_document(self, doc: Document, opts: TagOptions | None = None, **kw) -> Document | None:
        """Tag a Document's text (its language when the bundle has instructions for it); its meta
        is kept under the new one."""
        out = self.tag(doc.text, doc.lang if doc.lang in self.profiles else None, doc.id, opts, **kw)
        if out is not None:
            out.meta = {**doc.meta, **out.meta}
        return out

    # --- what the adjacency guard can change (eval-model --reuse) ---------------------------
    def guard_cannot_change(self, pred: Document, task: Task, lang: str | None = None,
                            cuts: Sequence[tuple[int, int]] | None = None) -> bool:
        """Whether predictions made without the decoder's adjacency guard are exactly what the guard
        would give: no segment cut into windows (their discarded overlaps are not in the output) and
        no segment where the guard would stop the pass before a later span (``guard_would_stop``),
        segmented with ``lang`` as the document was tagged."""
        cap = max_adjacent_run(task.dataset)
        for seg in self.segments(pred.text, lang, cuts):
            words = self.words(pred.text, seg)
            if len(self.windows(words)) > 1:
                return False
            spans = []
            for e in pred.entities:
                if seg.start <= e.start and e.end <= seg.end:
                    ws = char_span_to_words(words, e.start, e.end)
                    if ws is None:
                        return False
                    spans.append(Span(ws[0], ws[1], e.type))
            if guard_would_stop(spans, cap):
                return False
        return True
