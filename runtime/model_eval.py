"""Evaluate a tagging model on an annotated corpus split through the copy-constrained decoder.

    biotag eval-model --bundle DIR | --gguf FILE --corpus ncbi-disease --split test [--sample N]

Each corpus is tagged with its own instruction (the dataset's name and types), sentence by sentence
(the same sentence cuts as training), and scored with strict span matching (runtime.evaluate).
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

from .codec import FORMAT_S, Span
from .decoding import GUARD, ConstrainedDecoder, guard_would_stop, tag_words_scored
from .document import Document, Entity
from .errors import InputError
from .prompting import Task, max_adjacent_run
from .segment import sentence_spans, windows
from .words import char_span_to_words, segment_words


def predict_documents(decoder: ConstrainedDecoder, docs: Sequence[Document], task: Task,
                      max_words: int = 80, progress: bool = False) -> list[Document]:
    out = []
    try:
        from tqdm import tqdm

        it = tqdm(docs, disable=not progress, file=sys.stderr, unit="doc")
    except ImportError:  # pragma: no cover
        it = docs
    for doc in it:
        ents = []
        for a, b in sentence_spans(doc):
            words = segment_words(doc.text[a:b], offset=a)
            for win in windows(words, max_words):
                scored = tag_words_scored(decoder, task, [w.text for w in win.words])
                for sp, p in scored.items():
                    if win.own_start <= sp.start < win.own_end:
                        s, e = win.words[sp.start].start, win.words[sp.end - 1].end
                        ents.append(Entity(s, e, sp.type, doc.text[s:e], round(p, 4), "model"))
        uniq = {e.key: e for e in ents}
        out.append(Document(doc.id, doc.text, list(uniq.values()), doc.lang))
    return out


def guard_cannot_change(pred: Document, task: Task, max_words: int = 80) -> bool:
    """Whether predictions made without the decoder's adjacency guard are exactly what the guard
    would give: no sentence cut into windows (their discarded overlaps are not in the output) and no
    sentence where the guard would stop the pass before a later span (``guard_would_stop``)."""
    cap = max_adjacent_run(task.dataset)
    for a, b in sentence_spans(pred):
        words = segment_words(pred.text[a:b], offset=a)
        if len(words) > max_words:
            return False
        spans = []
        for e in pred.entities:
            if a <= e.start and e.end <= b:
                ws = char_span_to_words(words, e.start, e.end)
                if ws is None:
                    return False
                spans.append(Span(ws[0], ws[1], e.type))
        if guard_would_stop(spans, cap):
            return False
    return True


def sample_docs(docs: list[Document], n: int | None, seed: int = 0) -> list[Document]:
    if not n or n >= len(docs):
        return docs
    idx = sorted(random.Random(seed).sample(range(len(docs)), n))
    return [docs[i] for i in idx]


def gold_for(docs: Sequence[Document], task: Task) -> list[Document]:
    """Gold documents restricted to the task's types (the corpus's own types)."""
    return [d.copy([e for e in d.entities if e.type in task.types]) for d in docs]


def evaluate_on_corpus(decoder: ConstrainedDecoder, corpus: str, split: str, data_dir=None,
                       sample: int | None = None, seed: int = 0, fmt: str = FORMAT_S,
                       task_name: str | None = None, progress: bool = False, pred_out=None,
                       model_id: str = "", reuse=None) -> dict:
    """Tag a corpus split (or a seeded sample of it) and score it. With ``pred_out`` the predictions
    are written there and the run is resumable (see ``predict_resumable``); ``model_id`` names the
    model in the resume key so that a rerun with another model starts over. ``reuse``: a prediction
    file of the same model decoded without the adjacency guard; its documents that the guard cannot
    change (``guard_cannot_change``) are copied instead of decoded (needs ``pred_out``)."""
    from . import corpora
    from .evaluate import evaluate

    docs = sample_docs(corpora.load(corpus, split, data_dir), sample, seed)
    task = Task.for_corpus(task_name or corpus.replace("-pubtator", ""), fmt)
    resumed = reused = 0
    if reuse and not pred_out:
        raise ValueError("reuse needs pred_out")
    if pred_out:
        run_key = {"corpus": corpus, "split": split, "task": task.dataset, "types": list(task.types),
                   "format": fmt, "model": model_id, "documents": _ids_digest(docs),
                   "max_adjacent": max_adjacent_run(task.dataset) if decoder.adjacency_guard else None,
                   "guard": GUARD if decoder.adjacency_guard else None}
        copied = {}
        if reuse:
            old = {d.id: d for d in (Document.from_json(json.loads(line)) for line in
                                     Path(reuse).read_text(encoding="utf-8").splitlines() if line.strip())}
            copied = {d.id: old[d.id] for d in docs if d.id in old and guard_cannot_change(old[d.id], task)}
            run_key["reused_from"] = hashlib.sha256(Path(reuse).read_bytes()).hexdigest()[:16]
            reused = len(copied)
        pred, wall, resumed = predict_resumable(decoder, docs, task, Path(pred_out), run_key, progress, copied)
    else:
        t0 = time.time()
        pred = predict_documents(decoder, docs, task, progress=progress)
        wall = time.time() - t0
    gold = gold_for(docs, task)
    res = evaluate(gold, pred)
    res["run"] = {"corpus": corpus, "split": split, "documents": len(docs), "sample": sample,
                  "seed": seed, "wall_s": round(wall, 1), "calls": decoder.stats.calls,
                  "tokens_fed": decoder.stats.tokens_fed, "resumed_documents": resumed,
                  "guard_blocks": decoder.stats.guard_blocks, "adjacency_guard": decoder.adjacency_guard}
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


def predict_resumable(decoder: ConstrainedDecoder, docs: Sequence[Document], task: Task, pred_out: Path,
                      run_key: dict, progress: bool = False, copied: dict[str, Document] | None = None
                      ) -> tuple[list[Document], float, int]:
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

    from .textio import atomic_write_text

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
            (p,) = predict_documents(decoder, [doc], task)
            by_id[doc.id] = (p, time.time() - t0)
            f.write(record(*by_id[doc.id]))
            f.flush()
    pred = [by_id[d.id][0] for d in docs]
    atomic_write_text(pred_out, "".join(d.to_jsonl_line() + "\n" for d in pred))
    partial.unlink()
    return pred, sum(by_id[d.id][1] for d in docs), resumed


def _run(args) -> int:
    from .bundle import Bundle
    from .llm import LlamaBackend, llama_tokenize_fn, load_llama
    from .prompting import TokenTable, trained_marker_units

    fmt = FORMAT_S
    if args.bundle:
        b = Bundle.open(args.bundle)
        b.verify()
        gguf = b.path(b.manifest["llm"]["file"])
        fmt = b.manifest["llm"].get("format", FORMAT_S)
        if args.marker_bias is None:
            args.marker_bias = b.manifest["llm"].get("marker_bias", 0.0)
    else:
        gguf = args.gguf
    if args.marker_bias is None:
        args.marker_bias = 0.0
    if args.reuse and (not args.pred_dir or len(args.corpus) != 1 or args.no_adjacency_guard):
        raise InputError("--reuse needs --pred-dir, one --corpus and the adjacency guard on")
    if args.bundle:
        model_id = b.manifest.get("files", {}).get(b.manifest["llm"]["file"], {}).get("sha256", "")
    else:
        st = os.stat(gguf)
        model_id = f"{os.path.abspath(gguf)}:{st.st_size}:{st.st_mtime_ns}"
    model_id += f" marker_bias={args.marker_bias}"
    llm = load_llama(gguf, n_ctx=2048, n_threads=args.threads)
    # a bundle's model is offered only the types it has trained marker rows for
    table = TokenTable(llama_tokenize_fn(llm), llm.token_bos(),
                       trained_marker_units(args.bundle) if args.bundle else None)
    results = []
    for corpus in args.corpus:
        dec = ConstrainedDecoder(LlamaBackend(llm), table, speculative=True, marker_bias=args.marker_bias,
                                 adjacency_guard=not args.no_adjacency_guard)
        pred_out = Path(args.pred_dir) / f"{corpus}.{args.split}.jsonl" if args.pred_dir else None
        r = evaluate_on_corpus(dec, corpus, args.split, args.data_dir, args.sample, args.seed, fmt,
                               progress=not args.json and sys.stderr.isatty(), pred_out=pred_out,
                               model_id=model_id, reuse=args.reuse)
        results.append(r)
        if not args.json:
            m = r["micro"]
            print(f"{corpus:14} {args.split:5} docs {r['run']['documents']:5}  P {m['precision']:6.2f} "
                  f"R {m['recall']:6.2f} F1 {m['f1']:6.2f}  ({r['run']['wall_s']} s)", flush=True)
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("eval-model", help="evaluate a model bundle/GGUF on annotated corpora")
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
    p.add_argument("--marker-bias", type=float, default=None,
                   help="log-odds added to marker logits (default: the bundle's, else 0)")
    p.add_argument("--no-adjacency-guard", action="store_true",
                   help="decode without the cap on adjacent entities (to measure what the guard changes)")
    p.add_argument("--reuse", metavar="OLD.jsonl",
                   help="predictions of the same model decoded without the adjacency guard (needs "
                   "--pred-dir and one corpus): documents the guard cannot change are copied, not decoded")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
