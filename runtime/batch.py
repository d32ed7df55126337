"""A batch of documents to tag into a folder: collect the inputs, skip the finished outputs, read
each input, write each result atomically, tally what failed. Shared by ``biotag tag --out`` and the
desktop app's batch, so both name, skip and write results the same way.

    job = BatchJob(["notes/"], Path("out"), "jsonl", bundle="biotag 1.0")
    for doc_id, path in job.todo():
        try:
            doc = pipeline.tag(job.read(path), doc_id=doc_id)
            job.write(doc)
        except BiotagError as exc:
            job.fail(doc_id, str(exc))
    job.result   # done, skipped, failed, entities

Document ids are the input file names without their extension; when two inputs would get the same
id, their ids become their paths inside the folder given (``collect_inputs``). Output file names
come from ``output_name`` (the one function used to write a result and to find it again on resume).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .document import Document
from .errors import BiotagError, InputError
from .textio import atomic_write_text, decode_text, read_bytes

TEXT_SUFFIXES = {".txt", ".md", ".text", ".note"}
OUT_EXT = {"jsonl": ".jsonl", "bioc": ".xml", "bioc-xml": ".xml", "bioc-json": ".json",
           "pubtator": ".pubtator", "conll": ".conll", "csv": ".csv", "html": ".html", "brat": ".ann"}


# -- output names ----------------------------------------------------------------------------
def output_name(doc_id: str, fmt: str) -> str:
    """The file name of a document's output in ``--out DIR``: the one function used to write a
    result and to find it again on resume (brat's ``.ann`` is named the same way by its writer)."""
    from .formats.brat import id_to_name

    return id_to_name(doc_id) + OUT_EXT.get(fmt, "." + fmt)


def output_path(out_dir: Path, doc_id: str, fmt: str) -> Path:
    return out_dir / output_name(doc_id, fmt)


# -- inputs ------------------------------------------------------------------------------------
def _id_candidates(f: Path | None, root: Path | None) -> list[str]:
    """Ids for one input, shortest first: the file name without extension, its path (inside the
    folder given) without the extension, the path with it."""
    if f is None:
        return ["stdin"]
    rel = f.relative_to(root) if root is not None else f
    out = []
    for c in (f.stem, rel.with_suffix("").as_posix(), rel.as_posix()):
        if c not in out:
            out.append(c)
    return out


def collect_inputs(inputs: list[str], notes: list[str] | None = None) -> list[tuple[str, Path | None]]:
    """(doc id, path) per input document; path None = stdin. Ids are unique, and so are their
    output file names even on a case-insensitive file system; ``notes`` collects what was renamed
    or dropped (a file given twice)."""
    notes = notes if notes is not None else []
    items: list[tuple[Path | None, Path | None]] = []
    seen: set = set()
    for s in inputs:
        if s == "-":
            if any(f is None for f, _ in items):
                raise InputError("'-' (stdin) is given twice; it can be read once")
            items.append((None, None))
            continue
        p = Path(s)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not files:
                raise InputError(f"{p}: folder has no text files ({', '.join(sorted(TEXT_SUFFIXES))})")
            found = [(f, p) for f in files]
        elif p.exists():
            found = [(p, None)]
        else:
            raise InputError(f"{p}: no such file or folder")
        for f, root in found:
            key = os.path.realpath(f)
            if key in seen:
                notes.append(f"{f} is given twice; it is tagged once")
                continue
            seen.add(key)
            items.append((f, root))
    cands = [_id_candidates(f, root) for f, root in items]
    level = [0] * len(items)

    def key_of(doc_id: str) -> str:
        from .formats.brat import id_to_name

        return id_to_name(doc_id).casefold()

    while True:   # lengthen the ids that share an output name until none do (or none can grow)
        groups: dict[str, list[int]] = {}
        for k, c in enumerate(cands):
            groups.setdefault(key_of(c[level[k]]), []).append(k)
        grow = [k for g in groups.values() if len(g) > 1 for k in g if level[k] + 1 < len(cands[k])]
        if not grow:
            break
        for k in grow:
            level[k] += 1
    ids = [c[level[k]] for k, c in enumerate(cands)]
    taken: set[str] = set()
    result = []
    for k, (f, _root) in enumerate(items):
        doc_id = ids[k]
        if key_of(doc_id) in taken:   # still the same name: number it
            n = 2
            while key_of(f"{doc_id}~{n}") in taken or f"{doc_id}~{n}" in ids:
                n += 1
            doc_id = f"{doc_id}~{n}"
        taken.add(key_of(doc_id))
        if f is not None and doc_id != cands[k][0]:
            notes.append(f"{f} is tagged as {doc_id!r} (another input has the same name)")
        result.append((doc_id, f))
    return result



# -- writing -----------------------------------------------------------------------------------
def render(doc: Document | list[Document], fmt: str, bundle: str = "") -> str:
    """One file's content for one document (or a list of them): the format's own ``dumps``."""
    docs = doc if isinstance(doc, list) else [doc]
    if fmt == "html":
        from .report_html import render_report

        return render_report(docs, bundle, title=docs[0].id if len(docs) == 1 else "biotag report")
    from .formats import get_format

    f = get_format(fmt)
    if f.dumps is None:
        raise InputError(f"format {fmt} cannot be written to a stream; use --out DIR")
    return f.dumps(docs)


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)   # (doc id, message)
    cancelled: bool = False
    entities: int = 0


class BatchJob:
    """Inputs to tag into ``out_dir`` in format ``fmt`` (and, with ``html``, a self-contained HTML
    report beside each result; ``out_dir`` None: results go to a stream, see ``render``). A document is finished when its result exists (written last, so
    its existence means the whole document was written): ``todo`` skips it on a rerun."""

    def __init__(self, inputs: list[str], out_dir: str | os.PathLike | None, fmt: str = "jsonl", bundle: str = "",
                 html: bool = False, encoding: str = "utf-8", errors: str = "strict",
                 notes: list[str] | None = None):
        self.items = collect_inputs(inputs, notes)
        self.out_dir = Path(out_dir) if out_dir is not None else None   # None: a stream (nothing is skipped)
        self.fmt, self.bundle = fmt, bundle
        self.html = html and fmt != "html"
        self.encoding, self.errors = encoding, errors
        self.result = BatchResult()

    def finished(self, doc_id: str) -> bool:
        if self.out_dir is None:
            return False
        return output_path(self.out_dir, doc_id, self.fmt).exists() and (
            not self.html or output_path(self.out_dir, doc_id, "html").exists())

    def todo(self) -> list[tuple[str, Path | None]]:
        """The inputs whose results are not written yet (the others are counted as skipped)."""
        out = []
        for doc_id, path in self.items:
            if self.finished(doc_id):
                self.result.skipped.append(doc_id)
            else:
                out.append((doc_id, path))
        return out

    def read(self, path: Path | None, stdin=None) -> str:
        """An input's text (``path`` None: ``stdin``, a binary stream)."""
        data = stdin.read() if path is None else read_bytes(path)
        return decode_text(data, str(path or "<stdin>"), self.encoding, self.errors, allow_empty=True)

    def write(self, doc: Document) -> None:
        """Write a document's result atomically (its report first, the result last); a write that
        fails raises InputError naming the reason."""
        try:
            if self.html:
                atomic_write_text(output_path(self.out_dir, doc.id, "html"), render(doc, "html", self.bundle))
            if self.fmt == "brat":
                from .formats import write_documents

                write_documents([doc], self.out_dir, "brat")
            else:
                atomic_write_text(output_path(self.out_dir, doc.id, self.fmt),
                                  render(doc, self.fmt, self.bundle))
        except OSError as exc:
            raise InputError(f"cannot write ({exc.strerror or exc})") from None
        self.result.done.append(doc.id)
        self.result.entities += len(doc.entities)

    def fail(self, doc_id: str, message: str) -> None:
        self.result.failed.append((doc_id, message))


def short_error(exc: BaseException) -> str:
    """A failure's message for a report: a BiotagError's own (they name files and offsets, never
    document text), else only the exception's type."""
    if isinstance(exc, BiotagError):
        return str(exc)
    return f"internal error {type(exc).__name__} (details on the terminal)"
