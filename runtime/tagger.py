"""The Tagger: text in, a Document with entities out. llama.cpp + (optional) ONNX selector.

    tagger = Tagger.load()                 # the embedded default bundle, verified
    doc = tagger.tag("Aspirin-induced asthma ...")
    for doc in tagger.tag_many(docs, workers=2): ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from . import assertion
from .bundle import Bundle
from .codec import FORMAT_S
from .decoding import ConstrainedDecoder, tag_words_scored
from .dictionary import UserDictionary
from .document import Document, Entity, Segment
from .errors import ModelError
from .prompting import Task, TokenTable, trained_marker_units
from .segment import Seg, segment_text, windows
from .words import segment_words

DEFAULT_PROFILES = {"en": ["bc5cdr", "bc2gm", "linnaeus", "jnlpba"], "zh": ["cmeee"]}


def default_bundle_dir() -> Path:
    """$BIOTAG_BUNDLE, else the model folder named in models/DEFAULT (the embedded default)."""
    env = os.environ.get("BIOTAG_BUNDLE")
    if env:
        return Path(env)
    models = Path(__file__).resolve().parents[1] / "models"
    pointer = models / "DEFAULT"
    name = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else "default-bundle"
    return models / name


def gpu_available() -> bool:
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:
        return False


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


class Tagger:
    GROUP = 8   # segments tagged together, task by task (instruction KV reuse); the first goes alone
    # speculative drafts of at most 8 words: on the 500-word bench note 14.24 s vs 14.89 s unbounded
    # (median of 3; fewer tokens thrown away when a marker cuts a draft, more calls)
    DRAFT_WORDS = 8

    def __init__(self, llm_path: str | os.PathLike, fmt: str = FORMAT_S,
                 profiles: dict[str, list[str]] | None = None, threads: int | None = None,
                 device: str = "cpu", selector=None, thresholds: dict[str, float] | None = None,
                 name: str = "custom", version: str = "0", max_words: int = 80, n_ctx: int = 2048,
                 marker_bias: float = 0.0, fusion: str = "selector",
                 marker_units: dict[str, int] | None = None):
        from .llm import LlamaBackend, llama_tokenize_fn, load_llama

        if isinstance(selector, dict):  # a worker process rebuilds the selector from its spec
            from .selector import Selector

            selector = Selector.from_spec(selector)
        if device not in ("cpu", "gpu", "auto"):
            raise ModelError(f"unknown device {device!r} (cpu, gpu or auto)")
        from .selector import FUSIONS

        if fusion not in FUSIONS:
            raise ModelError(f"unknown selector score fusion {fusion!r} (expected one of {', '.join(FUSIONS)})")
        if device == "gpu" and not gpu_available():
            raise ModelError("--device gpu: this llama-cpp-python build has no GPU support "
                             "(reinstall it with CUDA, or use --device cpu)")
        use_gpu = device == "gpu" or (device == "auto" and gpu_available())
        self.device = "gpu" if use_gpu else "cpu"
        self.llm = load_llama(llm_path, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=-1 if use_gpu else 0)
        # marker_units: the markers the model has trained rows for (a bundle's adapter config); a
        # type appended to the canonical types after the model was trained is not offered to it
        self.table = TokenTable(llama_tokenize_fn(self.llm), self.llm.token_bos(), marker_units)
        self.decoder = ConstrainedDecoder(LlamaBackend(self.llm), self.table, speculative=True,
                                          marker_bias=marker_bias, draft_words=self.DRAFT_WORDS)
        self.fmt = fmt
        self.profiles = profiles or DEFAULT_PROFILES
        self.selector = selector
        self.thresholds = thresholds or {}
        self.fusion = fusion
        self.name, self.version = name, version
        self.max_words = max_words
        self.llm_path = str(llm_path)
        # on_progress(doc_id, characters done, characters in all) after each segment of tag()
        self.on_progress = None
        self.spec = dict(llm_path=str(llm_path), fmt=fmt, profiles=self.profiles, threads=threads,
                         device=self.device, thresholds=self.thresholds, name=name, version=version,
                         max_words=max_words, n_ctx=n_ctx, marker_bias=marker_bias, fusion=fusion,
                         selector=selector.spec() if selector is not None else None,
                         marker_units=marker_units)

    # --- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, bundle: str | os.PathLike | None = None, device: str = "auto",
             threads: int | None = None) -> "Tagger":
        root = Path(bundle) if bundle is not None else default_bundle_dir()
        b = Bundle.open(root)
        llm = b.manifest.get("llm") or {}
        if not isinstance(llm.get("file"), str) or llm["file"] not in b.manifest.get("files", {}):
            raise ModelError(f"{root}: manifest has no llm file listed in its files")
        if any(e.get("location") == "cache" and not b.path(r).is_file() for r, e in b.manifest["files"].items()):
            from biotag.export.bundle import ensure_files  # numpy + gguf + llama.cpp, no torch

            ensure_files(b)
        b.verify()
        selector, thresholds, fusion = None, {}, "selector"
        sel = b.manifest.get("selector")
        if sel:
            from .selector import Selector

            selector = Selector(b.path(sel["file"]), b.path(sel["tokenizer"]), sel)
            thresholds = dict(sel.get("thresholds", {}))
            thresholds.setdefault("*", sel.get("default", 0.5))
            fusion = sel.get("fusion", "selector")
        return cls(b.path(llm["file"]), llm.get("format", FORMAT_S), b.manifest.get("profiles"),
                   threads, device, selector, thresholds, b.name, b.version,
                   marker_bias=float(llm.get("marker_bias", 0.0)), fusion=fusion,
                   marker_units=trained_marker_units(root))

    # --- tagging ----------------------------------------------------------------------------
    def tagged_types(self) -> list[str]:
        """The canonical types the bundle's instructions ask for, in any language."""
        from .labels import TYPE_ORDER

        have = {t for lang in self.profiles for task in self.tasks_for(lang, None) for t in task.types}
        return [t for t in TYPE_ORDER if t in have] + sorted(have - set(TYPE_ORDER))

    def tasks_for(self, lang: str, types: Sequence[str] | None) -> list[Task]:
        tasks = [Task.for_corpus(d, self.fmt) for d in self.profiles.get(lang, self.profiles.get("en", []))]
        # only the types the model has markers for (the instruction names no other)
        tasks = [Task(t.dataset, tuple(x for x in t.types if self.table.has_type(x)), t.fmt) for t in tasks]
        tasks = [t for t in tasks if t.types]
        if types:
            want = set(types)
            tasks = [Task(t.dataset, tuple(x for x in t.types if x in want), t.fmt) for t in tasks]
            tasks = [t for t in tasks if t.types]
        return tasks

    def tag_segment(self, text: str, seg: Seg, opts: TagOptions | None = None) -> list[Entity]:
        """Entities of one segment (model candidates, then dictionary, selector, filters)."""
        return self._tag_group(text, [seg], opts or TagOptions())[0]

    LONG_WORD = 200    # characters: a longer "word" (a sequence, base64, a URL) goes to the model in
    WORD_PIECE = 100   # pieces of this many characters, so that a window always fits the context

    def _model_windows(self, words) -> list:
        """Windows of at most ``max_words`` words whose text is at most a third of the context in
        tokens (the prompt, the copy and its markers must fit): fewer words per window only where
        the words are long in tokens, and over-long words in pieces."""
        from .words import Word

        pieces = []
        for w in words:
            if len(w.text) <= self.LONG_WORD:
                pieces.append(w)
                continue
            for k in range(0, len(w.text), self.WORD_PIECE):
                t = w.text[k:k + self.WORD_PIECE]
                pieces.append(Word(t, w.start + k, w.start + k + len(t)))
        budget = max(64, (self.llm.n_ctx() - 256) // 3)
        mw = self.max_words
        while True:
            wins = windows(pieces, mw, overlap=min(16, mw // 4))
            if mw <= 1 or all(sum(len(self.table.word_ids(w.text)) for w in win.words) <= budget
                              for win in wins):
                return wins
            mw //= 2

    def _model_candidates(self, text: str, words, task: Task, found: dict) -> None:
        for win in self._model_windows(words):
            ws = [w.text for w in win.words]
            for sp, p in tag_words_scored(self.decoder, task, ws).items():
                if not (win.own_start <= sp.start < win.own_end):
                    continue
                a, b = win.words[sp.start].start, win.words[sp.end - 1].end
                key = (a, b, sp.type)
                if key not in found or (found[key].score or 0) < p:
                    found[key] = Entity(a, b, sp.type, text[a:b], round(p, 4), "model",
                                        {"task": task.dataset})

    def _tag_group(self, text: str, segs: Sequence[Seg], opts: TagOptions) -> list[list[Entity]]:
        """Entities of consecutive segments. Task by task over the whole group, so consecutive
        passes share the instruction and llama.cpp reuses its KV cache for it."""
        words = [segment_words(text[seg.start:seg.end], offset=seg.start) for seg in segs]
        tasks = [self.tasks_for(seg.lang, opts.types) for seg in segs]
        found: list[dict] = [{} for _ in segs]
        order: list[str] = []
        for ts in tasks:
            order.extend(t.dataset for t in ts if t.dataset not in order)
        for name in order:
            for k, ts in enumerate(tasks):
                for task in ts:
                    if task.dataset == name:
                        self._model_candidates(text, words[k], task, found[k])
        return [self._select(text, words[k], found[k], opts) for k in range(len(segs))]

    def _select(self, text: str, words, found: dict, opts: TagOptions) -> list[Entity]:
        """Dictionary candidates, selector scores and thresholds on top of the model's candidates."""
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

    def iter_segments(self, text: str, lang: str | None = None, opts: TagOptions | None = None
                      ) -> Iterator[tuple[Seg, list[Entity]]]:
        """Segments and their entities as they are tagged (for streaming UIs)."""
        opts = opts or TagOptions()
        group: list[Seg] = []
        size = 1   # the first segment alone (first results fast), then groups of GROUP
        for seg in segment_text(text, lang):
            group.append(seg)
            if len(group) >= size:
                yield from zip(group, self._tag_group(text, group, opts))
                group, size = [], self.GROUP
        if group:
            yield from zip(group, self._tag_group(text, group, opts))

    def tag(self, text: str, lang: str | None = None, doc_id: str = "doc",
            opts: TagOptions | None = None) -> Document:
        ents: list[Entity] = []
        segs: list[Segment] = []
        langs: dict[str, int] = {}
        for seg, es in self.iter_segments(text, lang, opts):
            segs.append(Segment(seg.start, seg.end))
            langs[seg.lang] = langs.get(seg.lang, 0) + (seg.end - seg.start)
            ents.extend(es)
            if self.on_progress is not None and seg.end < len(text):
                self.on_progress(doc_id, seg.end, len(text))
        if self.on_progress is not None:
            self.on_progress(doc_id, len(text), len(text))
        doc_lang = lang or (max(langs, key=langs.get) if langs else None)
        meta = {"bundle": f"{self.name} {self.version}"}
        if (opts or TagOptions()).assertion:
            meta["assertion_rules"] = assertion.rules_version()
        return Document(doc_id, text, ents, doc_lang, meta, segs)

    def tag_document(self, doc: Document, opts: TagOptions | None = None) -> Document:
        out = self.tag(doc.text, doc.lang if doc.lang in self.profiles else None, doc.id, opts)
        out.meta = {**doc.meta, **out.meta}
        return out

    def tag_many(self, docs: Iterable[Document], workers: int = 1, opts: TagOptions | None = None
                 ) -> Iterator[Document]:
        """Tag documents, yielding results in input order. ``workers > 1`` uses one process (and one
        llama.cpp model) per worker."""
        if workers <= 1:
            for d in docs:
                yield self.tag_document(d, opts)
            return
        from .workers import parallel_tag

        yield from parallel_tag(self, docs, workers, opts)
