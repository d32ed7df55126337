"""Evaluate a tagging model on an annotated corpus split through the tagging pipeline.

    biotag eval-model --bundle DIR | --gguf FILE --corpus ncbi-disease --split test [--sample N]

Every mode tags the document text through runtime.pipeline (the path ``biotag tag`` takes) and
scores with strict span matching (runtime.evaluation.scoring):

- default: the shipped segmentation and selector, with the corpus's own instruction (the
  dataset's name and types, ``Task.for_corpus``) in place of the bundle's profiles;
- ``--profile``: exactly what ``biotag tag`` runs (the bundle's instructions for the document's
  language), predictions restricted to the corpus's types; types are compared as the language's
  profile instruction names them (``runtime.profiles.to_profile``: jnlpba and genia's
  protein/DNA/RNA are scored as Gene, in the gold and in the predictions);
- ``--gold-sentences`` (a diagnostic, not the shipped pipeline): the corpus's own instruction on
  gold-aware sentence cuts (``sentence_spans``: no entity crosses a cut; the cuts training uses).

The decoder backend is pluggable: llama.cpp here, PyTorch in biotag.models.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Sequence

from ..codec import FORMAT_S
from ..decoding import GUARD, ConstrainedDecoder, DecodeStats
from ..document import Document
from ..errors import InputError
from ..pipeline import Pipeline, TagOptions
from ..prompting import Task, max_adjacent_run
from ..segment import sentence_spans

MODES = ("corpus", "profile", "gold-sentences")


def corpus_pipeline(model, task: Task, mode: str = "corpus") -> Pipeline:
    """The pipeline an evaluation runs: ``model`` is a Pipeline (a bundle's) or a bare decoder (a
    model without selector); every mode but ``profile`` asks with the corpus's own instruction."""
    if mode not in MODES:
        raise InputError(f"unknown evaluation mode {mode!r} (expected one of {', '.join(MODES)})")
    pipe = model if isinstance(model, Pipeline) else Pipeline(model, fmt=task.fmt, bundle="model")
    return pipe if mode == "profile" else pipe.with_instructions([task.dataset])


def _lang(pipe: Pipeline, doc: Document) -> str | None:
    return doc.lang if doc.lang in pipe.profiles else None


def _cuts(doc: Document, mode: str):
    return sentence_spans(doc) if mode == "gold-sentences" else None


EVAL_OPTIONS = TagOptions(assertion=False)   # the bundle's thresholds; assertion does not change spans


def predict_documents(model, docs: Sequence[Document], task: Task, max_words: int = 80,
                      progress: bool = False, mode: str = "corpus") -> list[Document]:
    """Predictions of ``docs`` through the pipeline (see the module's modes); ``max_words`` is used
    when ``model`` is a bare decoder."""
    pipe = corpus_pipeline(model, task, mode)
    if not isinstance(model, Pipeline):
        pipe.max_words = max_words
    try:
        from tqdm import tqdm

        it = tqdm(docs, disable=not progress, file=sys.stderr, unit="doc")
    except ImportError:  # pragma: no cover
        it = docs
    out = []
    for doc in it:
        pred = pipe.tag(doc.text, _lang(pipe, doc), doc.id, EVAL_OPTIONS, cuts=_cuts(doc, mode))
        out.append(pred)
    return out


def guard_cannot_change(pred: Document, task: Task, max_words: int = 80, pipeline: Pipeline | None = None,
                        mode: str = "corpus", lang: str | None = None) -> bool:
    """Whether predictions made without the decoder's adjacency guard are exactly what the guard
    would give (``Pipeline.guard_cannot_change``, on the segments and windows the pipeline used)."""
    if pipeline is None:   # segments and windows by word count only (no model at hand)
        pipeline = Pipeline(None, max_words=max_words)
    return pipeline.guard_cannot_change(pred, task, lang, _cuts(pred, mode))


def profile_scoring(docs: Sequence[Document], preds: Sequence[Document], task: Task
                    ) -> tuple[list[Document], list[Document]]:
    """Gold and predictions as ``--profile`` scores them: both typed as the language's profile
    instruction names the corpus's types (``to_profile``); predictions of other types dropped."""
    from ..profiles import profile_for, to_profile

    gold_out, pred_out = [], []
    for g, p in zip(docs, preds):
        prof = profile_for(g.lang or p.lang or "en")
        want = {to_profile(prof, c) for c in task.types} - {None}
        gold_out.append(g.copy([e.with_(type=to_profile(prof, e.type)) for e in g.entities
                                if e.type in task.types and to_profile(prof, e.type)]))
        kept: dict = {}
        for e in p.entities:
            t = to_profile(prof, e.type)
            if t in want:
                e = e.with_(type=t)
                if e.key not in kept or (kept[e.key].score or 0) < (e.score or 0):
                    kept[e.key] = e
        pred_out.append(p.copy(list(kept.values())))
    return gold_out, pred_out


def sample_docs(docs: list[Document], n: int | None, seed: int = 0) -> list[Document]:
    if not n or n >= len(docs):
        return docs
    idx = sorted(random.Random(seed).sample(range(len(docs)), n))
    return [docs[i] for i in idx]


def gold_for(docs: Sequence[Document], task: Task) -> list[Document]:
    """Gold documents restricted to the task's types (the corpus's own types)."""
    return [d.copy([e for e in d.entities if e.type in task.types]) for d in docs]


def evaluate_on_corpus(model, corpus: str, split: str, data_dir=None,
                       sample: int | None = None, seed: int = 0, fmt: str = FORMAT_S,
                       task_name: str | None = None, progress: bool = False, pred_out=None,
                       model_id: str = "", reuse=None, mode: str = "corpus") -> dict:
    """Tag a corpus split (or a seeded sample of it) through the pipeline and score it. ``model``:
    a Pipeline (a bundle's: its selector and thresholds) or a bare ConstrainedDecoder; ``mode``: see
    the module. With ``pred_out`` the predictions are written there and the run is resumable (see
    ``predict_resumable``); ``model_id`` names the model in the resume key so that a rerun with
    another model starts over. ``reuse``: a prediction file of the same model decoded without the
    adjacency guard; its documents that the guard cannot change (``guard_cannot_change``) are copied
    instead of decoded (needs ``pred_out``, one instruction and no selector)."""
    from .. import corpora
    from .scoring import evaluate

    docs = sample_docs(corpora.load(corpus, split, data_dir), sample, seed)
    task = Task.for_corpus(task_name or corpus.replace("-pubtator", ""), fmt)
    pipe = corpus_pipeline(model, task, mode)
    decoder = pipe.decoder
    decoder.stats = DecodeStats()
    resumed = reused = 0
    if reuse and not pred_out:
        raise ValueError("reuse needs pred_out")
    if reuse and (mode == "profile" or pipe.selector is not None):
        raise InputError("--reuse compares model candidates of one instruction: it needs the corpus's "
                         "instruction (no --profile) and no selector (--no-selector, or --gguf)")
    if pred_out:
        run_key = {"corpus": corpus, "split": split, "task": task.dataset, "types": list(task.types),
                   "format": fmt, "model": model_id, "documents": _ids_digest(docs),
                   "max_adjacent": max_adjacent_run(task.dataset) if decoder.adjacency_guard else None,
                   "guard": GUARD if decoder.adjacency_guard else None,
                   "pipeline": mode, "instructions": pipe.instructions or pipe.profiles,
                   "selector": pipe.selector is not None}
        copied = {}
        if reuse:
            old = {d.id: d for d in (Document.from_json(json.loads(line)) for line in
                                     Path(reuse).read_text(encoding="utf-8").splitlines() if line.strip())}
            copied = {d.id: old[d.id] for d in docs if d.id in old
                      and guard_cannot_change(old[d.id], task, pipeline=pipe, mode=mode, lang=_lang(pipe, d))}
            run_key["reused_from"] = hashlib.sha256(Path(reuse).read_bytes()).hexdigest()[:16]
            reused = len(copied)
        pred, wall, resumed = predict_resumable(pipe, docs, task, Path(pred_out), run_key, progress, copied,
                                                mode=mode)
    else:
        t0 = time.time()
        pred = predict_documents(pipe, docs, task, progress=progress, mode=mode)
        wall = time.time() - t0
    if mode == "profile":
        gold, pred = profile_scoring(docs, pred, task)
    else:
        gold = gold_for(docs, task)
    res = evaluate(gold, pred)
    res["run"] = {"corpus": corpus, "split": split, "documents": len(docs), "sample": sample,
                  "seed": seed, "wall_s": round(wall, 1), "calls": decoder.stats.calls,
                  "tokens_fed": decoder.stats.tokens_fed, "resumed_documents": resumed,
                  "guard_blocks": decoder.stats.guard_blocks, "adjacency_guard": decoder.adjacency_guard,
                  "pipeline": mode, "selector": pipe.selector is not None}
    if reuse:
        res["run"]["reused_documents"] = reused
    return res


def _ids_digest(docs: Sequence[Document]) -> str:
    return hashlib.sha256("\n".join(d.id for d in docs).encode("utf-8")).hexdigest()[:16]


def _read_partial(path: Path, run_key: dict) -> tuple[list[tuple[Document, float]], bool]:
    """The complete document lines of a partial prediction file written for the same run (same
    corpus, split, documents, task and model); a cut-off last line is dropped. Returns
    (documents with their seconds, whether the file belonged to another run)."""
    if not path.exists():
        return [], False
    done = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        head = json.loads(lines[0])
    except ValueError:
        return [], True
    if head.get("partial_predictions") != run_key:
        return [], True
    for line in lines[1:]:
        try:
            rec = json.loads(line)
            done.append((Document.from_json(rec["doc"]), float(rec["wall_s"])))
        except (ValueError, KeyError, TypeError):
            break   # only the last line can be cut off (the process was killed while writing it)
    return done, False


def predict_resumable(model, docs: Sequence[Document], task: Task, pred_out: Path,
                      run_key: dict, progress: bool = False, copied: dict[str, Document] | None = None,
                      mode: str = "corpus") -> tuple[list[Document], float, int]:
    """Predict ``docs`` into ``pred_out`` (canonical JSONL, one document a line, in ``docs`` order),
    surviving a kill: each finished document is appended at once to ``pred_out``.partial (first line:
    the run's key), and a rerun of the same run continues after the last complete line. Returns the
    predictions, the decoding seconds summed over all runs, and how many documents were resumed."""
    pred_out.parent.mkdir(parents=True, exist_ok=True)
    partial = pred_out.with_name(pred_out.name + ".partial")
    done, foreign = _read_partial(partial, run_key)
    if foreign:
        print(f"biotag: {partial} holds predictions of another run (model, documents or task differ); "
              f"starting over", file=sys.stderr)
    from tqdm import tqdm

    from ..textio import atomic_write_text

    def record(d: Document, t: float) -> str:
        return json.dumps({"wall_s": round(t, 4), "doc": d.to_json()}, ensure_ascii=False) + "\n"

    resumed = len(done)
    by_id = {d.id: (d, t) for d, t in done}
    for i, d in (copied or {}).items():   # predictions known without decoding (0 s)
        if i not in by_id:
            done.append((d, 0.0))
            by_id[i] = (d, 0.0)
    todo = [d for d in docs if d.id not in by_id]
    # rewrite without a cut-off tail, then append
    atomic_write_text(partial, json.dumps({"partial_predictions": run_key}, ensure_ascii=False) + "\n"
                      + "".join(record(d, t) for d, t in done))
    with open(partial, "a", encoding="utf-8") as f:
        for doc in tqdm(todo, disable=not progress, file=sys.stderr, unit="doc", initial=len(done),
                        total=len(docs)):
            t0 = time.time()
            (p,) = predict_documents(model, [doc], task, mode=mode)
            by_id[doc.id] = (p, time.time() - t0)
            f.write(record(*by_id[doc.id]))
            f.flush()
    pred = [by_id[d.id][0] for d in docs]
    atomic_write_text(pred_out, "".join(d.to_jsonl_line() + "\n" for d in pred))
    partial.unlink()
    return pred, sum(by_id[d.id][1] for d in docs), resumed


def bundle_identity(manifest: dict, pipe: Pipeline) -> str:
    """What makes a bundle's predictions what they are, for resume keys: the GGUF's sha256 and,
    when the selector runs, its sha256 and the thresholds and score fusion it is filtered with
    (a partial file written under other thresholds is not continued)."""
    files = manifest.get("files", {})
    ident = str(files.get(manifest["llm"]["file"], {}).get("sha256", ""))
    if pipe.selector is not None:
        sel = manifest.get("selector") or {}
        ident += " selector=" + str(files.get(sel.get("file"), {}).get("sha256", ""))
        rule = json.dumps({"thresholds": pipe.thresholds, "fusion": pipe.fusion}, sort_keys=True)
        ident += " thresholds=" + hashlib.sha256(rule.encode("utf-8")).hexdigest()[:16]
    profiles = getattr(pipe, "profiles", None)
    if profiles is not None and profiles != manifest.get("profiles"):   # --one-pass
        ident += " profiles=" + json.dumps(profiles, sort_keys=True)
    return ident


def _pipeline(args) -> tuple[Pipeline, str, str]:
    """The pipeline eval-model runs (a bundle's, with its selector unless --no-selector; or a bare
    GGUF's), its decoding format and the model's identity for resume keys."""
    if args.bundle:
        from ..bundle import Bundle
        from ..tagger import Tagger

        tagger = Tagger.load(args.bundle, device="cpu", threads=args.threads, one_pass=args.one_pass)
        b = Bundle.open(args.bundle)
        llm = b.manifest["llm"]
        if args.marker_bias is not None:   # one bias for every instruction
            tagger.decoder.marker_bias = float(args.marker_bias)
            tagger.decoder.task_bias = {}
        pipe = tagger.pipeline
        if args.no_selector:
            pipe.selector = None
        model_id = bundle_identity(b.manifest, pipe)
        fmt = llm.get("format", FORMAT_S)
    else:
        from ..llm import LlamaBackend, llama_tokenize_fn, load_llama
        from ..prompting import TokenTable

        llm = load_llama(args.gguf, n_ctx=2048, n_threads=args.threads)
        table = TokenTable(llama_tokenize_fn(llm), llm.token_bos())
        dec = ConstrainedDecoder(LlamaBackend(llm), table, speculative=True,
                                 marker_bias=args.marker_bias or 0.0)
        pipe = Pipeline(dec, table, None, FORMAT_S, n_ctx=llm.n_ctx(), bundle=Path(args.gguf).name)
        st = os.stat(args.gguf)
        model_id = f"{os.path.abspath(args.gguf)}:{st.st_size}:{st.st_mtime_ns}"
        fmt = FORMAT_S
    pipe.decoder.adjacency_guard = not args.no_adjacency_guard
    if args.draft_words is not None:
        pipe.decoder.draft_words = args.draft_words
    bias = f" marker_bias={pipe.decoder.marker_bias}"
    if args.draft_words is not None or args.one_pass:   # another draft length can flip near-ties
        bias += f" draft_words={pipe.decoder.draft_words}"
    if pipe.decoder.task_bias:
        bias += " task_bias=" + json.dumps(pipe.decoder.task_bias, sort_keys=True)
    return pipe, fmt, model_id + bias


def _run(args) -> int:
    if args.profile and args.gold_sentences:
        raise InputError("--profile and --gold-sentences are two different measurements: choose one")
    if args.draft_words is not None and args.draft_words < 1:
        raise InputError("--draft-words must be 1 or more")
    if args.one_pass and not (args.profile and args.bundle):
        raise InputError("--one-pass measures what 'biotag tag --one-pass' runs: it needs --profile and --bundle")
    if args.reuse and (not args.pred_dir or len(args.corpus) != 1 or args.no_adjacency_guard):
        raise InputError("--reuse needs --pred-dir, one --corpus and the adjacency guard on")
    if args.reuse and not Path(args.reuse).is_file():
        raise InputError(f"--reuse {args.reuse}: no such prediction file")
    mode = "profile" if args.profile else "gold-sentences" if args.gold_sentences else "corpus"
    pipe, fmt, model_id = _pipeline(args)
    results = []
    for corpus in args.corpus:
        pred_out = Path(args.pred_dir) / f"{corpus}.{args.split}.jsonl" if args.pred_dir else None
        r = evaluate_on_corpus(pipe, corpus, args.split, args.data_dir, args.sample, args.seed, fmt,
                               progress=not args.json and sys.stderr.isatty(), pred_out=pred_out,
                               model_id=model_id, reuse=args.reuse, mode=mode)
        results.append(r)
        if not args.json:
            m = r["micro"]
            print(f"{corpus:14} {args.split:5} docs {r['run']['documents']:5}  P {m['precision']:6.2f} "
                  f"R {m['recall']:6.2f} F1 {m['f1']:6.2f}  ({r['run']['wall_s']} s)", flush=True)
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("eval-model", help="evaluate a model bundle/GGUF on annotated corpora",
                       description="Tag each document's text through the tagging pipeline (the shipped "
                       "segmentation and selector) with the corpus's own instruction, and score it with "
                       "strict span matching. --profile runs the instructions 'biotag tag' runs.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--bundle")
    g.add_argument("--gguf")
    p.add_argument("--corpus", nargs="+", required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--sample", type=int, help="evaluate a random sample of N documents (seeded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--pred-dir", help="write the predictions as JSONL here (CORPUS.SPLIT.jsonl); a run "
                   "that is stopped and started again with the same arguments continues where it stopped")
    p.add_argument("--draft-words", type=int, default=None,
                   help="words of each speculative draft (default: what 'biotag tag' uses); decoding "
                   "speed only, though batches of other sizes can flip near-ties")
    p.add_argument("--marker-bias", type=float, default=None,
                   help="log-odds added to marker logits under every instruction (default: the bundle's "
                   "marker_bias and per-instruction task_bias, else 0)")
    p.add_argument("--no-adjacency-guard", action="store_true",
                   help="decode without the cap on adjacent entities (to measure what the guard changes)")
    p.add_argument("--reuse", metavar="OLD.jsonl",
                   help="predictions of the same model decoded without the adjacency guard (needs "
                   "--pred-dir and one corpus): documents the guard cannot change are copied, not decoded")
    p.add_argument("--profile", action="store_true",
                   help="run exactly what 'biotag tag' runs (the bundle's instructions for the document's "
                   "language), restricted to the corpus's types as the language's profile names them")
    p.add_argument("--one-pass", action="store_true",
                   help="with --profile: what 'biotag tag --one-pass' runs (the language's profile "
                   "instruction, one pass per segment); needs --bundle")
    p.add_argument("--gold-sentences", action="store_true",
                   help="diagnostic: cut documents at gold-aware sentence boundaries (no entity crosses a "
                   "cut) instead of the shipped segmenter; not the accuracy of the shipped pipeline")
    p.add_argument("--no-selector", action="store_true",
                   help="score the model's candidates without the bundle's selector and thresholds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
