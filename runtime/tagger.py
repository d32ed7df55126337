"""The Tagger: text in, a Document with entities out. llama.cpp + (optional) ONNX selector.

    tagger = Tagger.load()                 # the embedded default bundle, verified
    doc = tagger.tag("Aspirin-induced asthma ...")
    for doc in tagger.tag_many(docs, workers=2): ...
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .bundle import Bundle, ensure_files
from .codec import FORMAT_S
from .decoding import ConstrainedDecoder
from .document import Document, Entity
from .errors import ModelError
from .pipeline import DEFAULT_PROFILES, Pipeline, TagOptions, threshold_for
from .prompting import Task, TokenTable, trained_marker_units
from .segment import Seg

__all__ = ["Tagger", "TagOptions", "threshold_for", "DEFAULT_PROFILES", "default_bundle_dir"]


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


class Tagger:
    # speculative drafts of at most 8 words: on the 500-word bench note 14.24 s vs 14.89 s unbounded
    # (median of 3; fewer tokens thrown away when a marker cuts a draft, more calls)
    DRAFT_WORDS = 8
    # one pass opens a marker every few words, so a long draft is mostly cut and thrown away: on
    # the same note 9.8 s with drafts of 3 words against 12.1 s with 8 (five instructions per
    # segment: 35.2 s with 3 against 33.8 s with 8)
    ONE_PASS_DRAFT_WORDS = 3

    def __init__(self, llm_path: str | os.PathLike, fmt: str = FORMAT_S,
                 profiles: dict[str, list[str]] | None = None, threads: int | None = None,
                 device: str = "cpu", selector=None, thresholds: dict[str, float] | None = None,
                 name: str = "custom", version: str = "0", max_words: int = 80, n_ctx: int = 2048,
                 marker_bias: float = 0.0, fusion: str = "selector",
                 marker_units: dict[str, int] | None = None, task_bias: dict[str, float] | None = None,
                 draft_words: int | None = None):
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
                                          marker_bias=marker_bias, draft_words=draft_words or self.DRAFT_WORDS,
                                          task_bias=task_bias)
        self.name, self.version = name, version
        self.llm_path = str(llm_path)
        # on_progress(doc_id, characters done, characters in all) after each segment of tag()
        self.on_progress = None
        # the path from text to Document; the Tagger owns the model it runs
        self.pipeline = Pipeline(self.decoder, self.table, profiles or DEFAULT_PROFILES, fmt, selector,
                                 thresholds or {}, fusion, max_words, self.llm.n_ctx(), f"{name} {version}")
        self.spec = dict(llm_path=str(llm_path), fmt=fmt, profiles=self.profiles, threads=threads,
                         device=self.device, thresholds=self.thresholds, name=name, version=version,
                         max_words=max_words, n_ctx=n_ctx, marker_bias=marker_bias, fusion=fusion,
                         task_bias=dict(task_bias or {}), draft_words=draft_words,
                         selector=selector.spec() if selector is not None else None,
                         marker_units=marker_units)

    # the pipeline's settings, read and set through the Tagger
    def _pipeline_attr(name: str):
        return property(lambda self: getattr(self.pipeline, name),
                        lambda self, v: setattr(self.pipeline, name, v))

    fmt = _pipeline_attr("fmt")
    profiles = _pipeline_attr("profiles")
    selector = _pipeline_attr("selector")
    thresholds = _pipeline_attr("thresholds")
    fusion = _pipeline_attr("fusion")
    max_words = _pipeline_attr("max_words")
    del _pipeline_attr

    # --- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, bundle: str | os.PathLike | None = None, device: str = "auto",
             threads: int | None = None, one_pass: bool = False) -> "Tagger":
        """A bundle's Tagger. ``one_pass``: one pass per segment under the language's profile
        instruction (every type at once) instead of the bundle's per-dataset instructions: faster,
        less accurate (the model card measures both); only for a model trained with profiles."""
        from .profiles import ONE_PASS, trained_profiles

        root = Path(bundle) if bundle is not None else default_bundle_dir()
        b = Bundle.open(root)
        if one_pass and not trained_profiles(root):
            raise ModelError(f"{b.name} {b.version}: its model was not trained with the one-pass profile "
                             "instructions (its config.json has no profile share): tag without --one-pass "
                             "(in biotag-gui: settings, one pass unchecked)")
        llm = b.manifest.get("llm") or {}
        if not isinstance(llm.get("file"), str) or llm["file"] not in b.manifest.get("files", {}):
            raise ModelError(f"{root}: manifest has no llm file listed in its files")
        ensure_files(b)   # a cache-located model file missing: rebuilt by the bundle builder
        b.verify()
        selector, thresholds, fusion = None, {}, "selector"
        sel = b.manifest.get("selector")
        if sel:
            from .selector import Selector

            selector = Selector(b.path(sel["file"]), b.path(sel["tokenizer"]), sel)
            thresholds = dict(sel.get("thresholds", {}))
            thresholds.setdefault("*", sel.get("default", 0.5))
            fusion = sel.get("fusion", "selector")
        profiles = ONE_PASS if one_pass else b.manifest.get("profiles")
        return cls(b.path(llm["file"]), llm.get("format", FORMAT_S), profiles,
                   threads, device, selector, thresholds, b.name, b.version,
                   marker_bias=float(llm.get("marker_bias", 0.0)), fusion=fusion,
                   marker_units=trained_marker_units(root), task_bias=llm.get("task_bias"),
                   draft_words=cls.ONE_PASS_DRAFT_WORDS if one_pass else None)

    # --- tagging: everything goes through the pipeline (runtime.pipeline) ------------------
    def tagged_types(self) -> list[str]:
        """The canonical types the bundle's instructions ask for, in any language."""
        return self.pipeline.tagged_types()

    def tasks_for(self, lang: str, types: Sequence[str] | None) -> list[Task]:
        return self.pipeline.tasks_for(lang, types)

    def tag_segment(self, text: str, seg: Seg, opts: TagOptions | None = None) -> list[Entity]:
        """Entities of one segment (model candidates, then dictionary, selector, filters)."""
        return self.pipeline.tag_group(text, [seg], opts or TagOptions())[0]

    def _select(self, text: str, words, found: dict, opts: TagOptions) -> list[Entity]:
        return self.pipeline.select(text, words, found, opts)

    def iter_segments(self, text: str, lang: str | None = None, opts: TagOptions | None = None
                      ) -> Iterator[tuple[Seg, list[Entity]]]:
        """Segments and their entities as they are tagged (for streaming UIs)."""
        return self.pipeline.iter_segments(text, lang, opts)

    def tag(self, text: str, lang: str | None = None, doc_id: str = "doc",
            opts: TagOptions | None = None) -> Document:
        return self.pipeline.tag(text, lang, doc_id, opts, on_progress=self.on_progress)

    def tag_document(self, doc: Document, opts: TagOptions | None = None) -> Document:
        return self.pipeline.tag_document(doc, opts, on_progress=self.on_progress)

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
