"""`biotag tag INPUT... [--out DIR|-] [--format ...]`: the main job of the product.

INPUT is text files, folders (their *.txt / *.md / *.text / *.note files, recursively) or ``-``
(stdin). Each document's id is its file name without the extension; when two inputs would get the
same id (``note.txt`` and ``note.md``, or ``a/note.txt`` and ``b/note.txt``), their ids become
their paths inside the folder given (without, then with the extension), and stderr says so. With
``--out DIR`` every document's output is written atomically to its own file, named by
``output_name`` (the id with ``/``, ``:``, ``%`` and other characters file names cannot hold
written as ``%XX``), and re-running the same command skips documents whose output already exists
(resume after a crash or kill -9). Without ``--out`` (or ``--out -``) results go to stdout as one
stream: one JSONL line per document, one CSV header, one BioC collection, one HTML page.

A document that fails is reported by name and the batch goes on. Exit codes: 0 every document
tagged; 1 some documents failed; 2 bad arguments, or no input could be read; 3 model errors;
130 interrupted.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Iterator

from ..batch import (OUT_EXT, TEXT_SUFFIXES, BatchJob, collect_inputs, output_name,  # noqa: F401
                    output_path, render)
from ..document import Document
from ..errors import BiotagError, InputError
from ..textio import check_encoding

LONG_DOCUMENT = 50_000   # characters: progress within the document is reported


# -- arguments ---------------------------------------------------------------------------------
def _unit_interval(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if math.isnan(v) or not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {s!r}")
    return v


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {s!r}")
    return v


def _encoding(s: str) -> str:
    try:
        check_encoding(s)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return s


def resolve_types(types: list[str] | None, notes: list[str]) -> list[str] | None:
    """Canonical type names for ``--types``: exact, else matched ignoring case (with a note);
    InputError listing the valid types for an unknown one."""
    if not types:
        return None
    from ..labels import TYPE_ORDER

    by_fold = {t.casefold(): t for t in TYPE_ORDER}
    out = []
    for t in types:
        canon = t if t in TYPE_ORDER else by_fold.get(t.strip().casefold())
        if canon is None:
            raise InputError(f"unknown entity type {t!r} in --types; valid types: {', '.join(TYPE_ORDER)}")
        if canon != t:
            notes.append(f"--types {t} is read as {canon}")
        if canon not in out:
            out.append(canon)
    return out


def check_out_dir(out_dir: Path) -> None:
    """Refuse an --out that cannot be a folder of results, before any model is loaded."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise InputError(f"--out {out_dir}: the folder is not writable")


# -- writing to stdout --------------------------------------------------------------------------
class StdoutSink:
    """All documents of a run as one stream on stdout: JSONL and PubTator document by document,
    CSV with one header, and the formats that are one whole file (BioC XML/JSON, CoNLL, HTML)
    once at the end, holding every document."""

    STREAMED = ("jsonl", "pubtator", "csv")

    def __init__(self, fmt: str, bundle: str, stream=None):
        self.fmt, self.bundle = fmt, bundle
        self.stream = stream or sys.stdout
        self.held: list[Document] = []
        self.first = True

    def add(self, doc: Document) -> None:
        if self.fmt not in self.STREAMED:
            render(doc, self.fmt, self.bundle)   # fail now, for this document, if it cannot be written
            self.held.append(doc)
            return
        if self.fmt == "jsonl":
            text = doc.to_jsonl_line() + "\n"
        else:
            text = render(doc, self.fmt, self.bundle)
            if self.fmt == "csv" and not self.first:
                text = text.split("\r\n", 1)[1] if "\r\n" in text else ""
        self.stream.write(text)
        self.stream.flush()
        self.first = False

    def close(self) -> None:
        if self.held:
            self.stream.write(render(self.held, self.fmt, self.bundle))
            self.stream.flush()
            self.held = []


# -- the command -------------------------------------------------------------------------------
def run(args) -> int:
    from tqdm import tqdm

    from ..dictionary import UserDictionary
    from ..tagger import TagOptions, Tagger

    def say(msg: str) -> None:
        print(f"biotag tag: {msg}", file=sys.stderr)

    fmt = args.format
    notes: list[str] = []
    types = resolve_types(args.types, notes)
    out_dir = None if args.out in (None, "-") else Path(args.out)
    job = BatchJob(args.inputs, out_dir, fmt,
                   encoding=args.encoding, errors=args.errors, notes=notes)
    if out_dir is None and fmt == "brat":
        raise InputError("--format brat writes two files per document: give --out DIR")
    if out_dir is not None:
        check_out_dir(out_dir)
    for n in notes:
        say(n)
    todo = job.todo()
    skipped = len(job.result.skipped)
    opts = TagOptions(types=types, threshold=args.threshold, use_selector=not args.no_selector,
                      assertion=args.assertion != "off",
                      dictionary=UserDictionary.load(args.dictionary, not args.case_sensitive)
                      if args.dictionary else None, dictionary_mode=args.dictionary_mode)
    if not todo:
        say(f"nothing to do ({skipped} document(s) already done)")
        return 0
    tagger = Tagger.load(args.bundle, device=args.device, threads=args.threads, one_pass=args.one_pass)
    if types:
        tagged = tagger.tagged_types()
        missing = [t for t in types if t not in tagged]
        if len(missing) == len(types) and opts.dictionary is None:
            raise InputError(f"the model bundle tags none of {', '.join(types)} "
                             f"(it tags {', '.join(tagged)})")
        for t in missing:
            say(f"warning: the model bundle does not tag {t} (it tags {', '.join(tagged)})")
    bundle = job.bundle = f"{tagger.name} {tagger.version}"
    failed: list[str] = []
    unreadable: list[str] = []

    def docs() -> Iterator[Document]:
        for doc_id, path in todo:
            try:
                text = job.read(path, sys.stdin.buffer)
            except BiotagError as exc:
                print(f"biotag: skipped {doc_id}: {exc}", file=sys.stderr)
                failed.append(doc_id)
                unreadable.append(doc_id)
                continue
            if not text.strip():
                say(f"note: {doc_id} is empty; its result has no entities")
            yield Document(doc_id, text, [], args.lang)

    show_bar = sys.stderr.isatty() and not args.quiet
    bar = tqdm(total=len(todo), unit="doc", disable=not show_bar, file=sys.stderr, dynamic_ncols=True)
    if args.workers <= 1 and not args.quiet:
        last = {"id": None, "step": -1}

        def on_progress(doc_id: str, done: int, total: int) -> None:
            if total < LONG_DOCUMENT:
                return
            pct = 100 * done // max(1, total)
            if show_bar:
                bar.set_postfix_str(f"{doc_id}: {pct}% of {total:,} characters", refresh=True)
            elif (last["id"], last["step"]) != (doc_id, pct // 10):   # a log line every 10%
                last["id"], last["step"] = doc_id, pct // 10
                say(f"{doc_id}: {pct}% of {total:,} characters")

        tagger.on_progress = on_progress
    sink = StdoutSink(fmt, bundle) if out_dir is None else None
    n_ok = n_ent = 0
    try:
        for doc in tagger.tag_many(docs(), workers=args.workers, opts=opts):
            try:
                if sink is not None:
                    sink.add(doc)
                else:
                    job.write(doc)
                n_ok += 1
                n_ent += len(doc.entities)
            except BiotagError as exc:
                print(f"biotag: failed {doc.id}: {exc}", file=sys.stderr)
                job.fail(doc.id, str(exc))
                failed.append(doc.id)
            except OSError as exc:   # stdout
                print(f"biotag: failed {doc.id}: cannot write ({exc.strerror or exc})", file=sys.stderr)
                job.fail(doc.id, f"cannot write ({exc.strerror or exc})")
                failed.append(doc.id)
            bar.update(1)
        if sink is not None:
            sink.close()
    finally:
        bar.close()
    msg = f"{n_ok} document(s), {n_ent} entities"
    if skipped:
        msg += f", {skipped} already done"
    if failed:
        msg += f", {len(failed)} failed: {', '.join(failed[:10])}"
    say(msg)
    if failed and not n_ok and len(unreadable) == len(failed):
        return 2   # nothing could be read: an input error
    return 1 if failed else 0


def add_cli(sub) -> None:
    p = sub.add_parser("tag", help="tag text files, folders or stdin")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="text file, folder or - for stdin")
    p.add_argument("--out", help="output folder (one file per document; resumable) or - for stdout")
    p.add_argument("--format", default="jsonl",
                   choices=["jsonl", "brat", "bioc", "bioc-xml", "bioc-json", "pubtator", "conll", "csv", "html"])
    p.add_argument("--types", nargs="+", metavar="TYPE",
                   help="only these entity types (canonical names, e.g. Disease Chemical)")
    p.add_argument("--threshold", type=_unit_interval, help="score threshold from 0 to 1 (overrides the bundle's)")
    p.add_argument("--no-selector", action="store_true", help="keep every model candidate")
    p.add_argument("--assertion", choices=("on", "off"), default="on",
                   help="mark each entity present, negated, possible, historical or family "
                        "(default on)")
    p.add_argument("--dictionary", help="TSV/CSV of term<TAB>type to match as candidates")
    p.add_argument("--dictionary-mode", choices=["score", "force"], default="score")
    p.add_argument("--case-sensitive", action="store_true", help="dictionary matching is case-sensitive")
    p.add_argument("--device", choices=["cpu", "gpu", "auto"], default="cpu")
    p.add_argument("--threads", type=_positive_int, help="CPU threads of llama.cpp (default: up to 4)")
    p.add_argument("--workers", type=_positive_int, default=1, help="processes, each with its own model")
    p.add_argument("--bundle", help="model bundle folder (default: the embedded default bundle)")
    p.add_argument("--one-pass", action="store_true",
                   help="one pass per sentence that asks for every type of its language (about 3x "
                   "faster, less accurate: see the README's accuracy section)")
    p.add_argument("--lang", choices=["en", "zh"], help="language of the input (default: detected per segment)")
    p.add_argument("--encoding", type=_encoding, default="utf-8",
                   help="encoding of the input (default utf-8; a UTF-16/32 byte-order mark is recognised)")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
