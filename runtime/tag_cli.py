"""`biotag tag INPUT... [--out DIR|-] [--format ...]`: the main job of the product.

INPUT is text files, folders (their *.txt / *.md / *.text files, recursively) or ``-`` (stdin).
Each document's id is its file name without the extension. With ``--out DIR`` every document's
output is written atomically to its own file, and re-running the same command skips documents
whose output already exists (resume after a crash or kill -9). Without ``--out`` (or ``--out -``)
results stream to stdout. A document that fails is reported by name, the batch goes on, and the
exit code is 1.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

from .document import Document
from .errors import BiotagError, InputError
from .textio import atomic_write_text, decode_text, read_bytes

TEXT_SUFFIXES = {".txt", ".md", ".text", ".note"}
OUT_EXT = {"jsonl": ".jsonl", "bioc": ".xml", "bioc-xml": ".xml", "bioc-json": ".json",
           "pubtator": ".pubtator", "conll": ".conll", "csv": ".csv", "html": ".html", "brat": ".ann"}


def collect_inputs(inputs: list[str]) -> list[tuple[str, Path | None]]:
    """(doc id, path) per input document; path None = stdin."""
    items: list[tuple[Path | None, Path | None]] = []
    for s in inputs:
        if s == "-":
            items.append((None, None))
            continue
        p = Path(s)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not files:
                raise InputError(f"{p}: folder has no text files ({', '.join(sorted(TEXT_SUFFIXES))})")
            items.extend((f, p) for f in files)
        elif p.exists():
            items.append((p, None))
        else:
            raise InputError(f"{p}: no such file or folder")
    ids: dict[str, int] = {}
    out = []
    for f, root in items:
        doc_id = "stdin" if f is None else f.stem
        ids[doc_id] = ids.get(doc_id, 0) + 1
        out.append((doc_id, f, root))
    result = []
    for doc_id, f, root in out:
        if ids[doc_id] > 1 and f is not None:  # same name twice: keep ids unique with the path
            rel = f.relative_to(root) if root else f
            doc_id = str(rel.with_suffix("")).replace(os.sep, "/")
        result.append((doc_id, f))
    return result


def _out_path(out_dir: Path, doc_id: str, fmt: str) -> Path:
    safe = doc_id.replace("/", "__")
    return out_dir / (safe + OUT_EXT.get(fmt, "." + fmt))


def render(doc: Document, fmt: str, bundle: str = "") -> str:
    if fmt == "html":
        from .report_html import render_report

        return render_report([doc], bundle, title=doc.id)
    from .formats import get_format

    f = get_format(fmt)
    mod = sys.modules[f.write.__module__]
    dumps = getattr(mod, "dumps", None) or getattr(mod, "dumps_xml" if f.name == "bioc-xml" else "dumps_json", None)
    if dumps is None:
        raise InputError(f"format {fmt} cannot be written to a stream; use --out DIR")
    return dumps([doc])


def run(args) -> int:
    from tqdm import tqdm

    from .dictionary import UserDictionary
    from .tagger import TagOptions, Tagger

    fmt = args.format
    items = collect_inputs(args.inputs)
    out_dir = None if args.out in (None, "-") else Path(args.out)
    if out_dir is None and fmt == "brat":
        raise InputError("--format brat writes two files per document: give --out DIR")
    todo = []
    skipped = 0
    for doc_id, path in items:
        if out_dir is not None and _out_path(out_dir, doc_id, fmt).exists():
            skipped += 1
            continue
        todo.append((doc_id, path))
    opts = TagOptions(types=args.types, threshold=args.threshold, use_selector=not args.no_selector,
                      assertion=args.assertion != "off",
                      dictionary=UserDictionary.load(args.dictionary, not args.case_sensitive)
                      if args.dictionary else None, dictionary_mode=args.dictionary_mode)
    if not todo:
        print(f"biotag tag: nothing to do ({skipped} document(s) already done)", file=sys.stderr)
        return 0
    tagger = Tagger.load(args.bundle, device=args.device, threads=args.threads)
    bundle = f"{tagger.name} {tagger.version}"
    failed: list[str] = []

    def docs() -> Iterator[Document]:
        for doc_id, path in todo:
            try:
                data = sys.stdin.buffer.read() if path is None else read_bytes(path)
                text = decode_text(data, str(path or "<stdin>"), args.encoding, args.errors, allow_empty=True)
            except BiotagError as exc:
                print(f"biotag: skipped {doc_id}: {exc}", file=sys.stderr)
                failed.append(doc_id)
                continue
            yield Document(doc_id, text, [], args.lang)

    bar = tqdm(total=len(todo), unit="doc", disable=not sys.stderr.isatty() or args.quiet,
               file=sys.stderr, dynamic_ncols=True)
    n_ok = n_ent = 0
    try:
        for doc in tagger.tag_many(docs(), workers=args.workers, opts=opts):
            try:
                if out_dir is None:
                    sys.stdout.write(render(doc, fmt, bundle) if fmt != "jsonl" else doc.to_jsonl_line() + "\n")
                    sys.stdout.flush()
                elif fmt == "brat":
                    from .formats import write_documents

                    write_documents([doc], out_dir, "brat")
                else:
                    atomic_write_text(_out_path(out_dir, doc.id, fmt), render(doc, fmt, bundle))
                n_ok += 1
                n_ent += len(doc.entities)
            except BiotagError as exc:
                print(f"biotag: failed {doc.id}: {exc}", file=sys.stderr)
                failed.append(doc.id)
            bar.update(1)
    finally:
        bar.close()
    msg = f"biotag tag: {n_ok} document(s), {n_ent} entities"
    if skipped:
        msg += f", {skipped} already done"
    if failed:
        msg += f", {len(failed)} failed: {', '.join(failed[:10])}"
    print(msg, file=sys.stderr)
    return 1 if failed else 0


def add_cli(sub) -> None:
    p = sub.add_parser("tag", help="tag text files, folders or stdin")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="text file, folder or - for stdin")
    p.add_argument("--out", help="output folder (one file per document; resumable) or - for stdout")
    p.add_argument("--format", default="jsonl",
                   choices=["jsonl", "brat", "bioc", "bioc-xml", "bioc-json", "pubtator", "conll", "csv", "html"])
    p.add_argument("--types", nargs="+", metavar="TYPE", help="only these entity types")
    p.add_argument("--threshold", type=float, help="score threshold (overrides the bundle's)")
    p.add_argument("--no-selector", action="store_true", help="keep every model candidate")
    p.add_argument("--assertion", choices=("on", "off"), default="on",
                   help="mark each entity present, negated, possible, historical or family "
                        "(default on)")
    p.add_argument("--dictionary", help="TSV/CSV of term<TAB>type to match as candidates")
    p.add_argument("--dictionary-mode", choices=["score", "force"], default="score")
    p.add_argument("--case-sensitive", action="store_true", help="dictionary matching is case-sensitive")
    p.add_argument("--device", choices=["cpu", "gpu", "auto"], default="cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--bundle", help="model bundle folder (default: the embedded default bundle)")
    p.add_argument("--lang", choices=["en", "zh"], help="language of the input (default: detected per segment)")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
