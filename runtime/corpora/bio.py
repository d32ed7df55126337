"""Token-based readers: IOB TSV, CoNLL and character BIO (text reconstructed from tokens).

The token/tag lines, the tags and their decoding into mentions are read by the lenient mode of
:mod:`biotag.runtime.formats.bio_tags` (the one BIO parser); these readers add the corpus policy:
one Document per sentence, the text rebuilt from the tokens, the read report, ids and types."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..document import Document
from ..formats.bio_tags import DocStart, decode, is_char_line, scan_columns
from ..textio import decode_text, read_bytes
from .repairs import ReadReport, _entity, _lines, _report, _sort_key, _where


def _sentence_doc(tokens: list[str], tags: list[tuple[str, str]], *, sep: str, corpus: str,
                  split: str, label_key: str, lang: str, index: int, line: int, path,
                  report: ReadReport, continuation: str = "new", meta: dict | None = None) -> Document:
    text = sep.join(tokens)
    starts, pos, lsep = [], 0, len(sep)
    for tok in tokens:
        starts.append(pos)
        pos += len(tok) + lsep
    ents = []
    where = _where(path, line)
    for s, e, t, how, absorbed in decode(tags, continuation):
        report.mention(t)
        if how == "merged":
            report.repair("bio_continuation_merged", where, f"I-{t} run at token {s}")
            continue
        cs, ce = starts[s], starts[e - 1] + len(tokens[e - 1])
        if how == "extended":
            report.repair("bio_continuation_extended", where, f"I-{t} run at token {s}")
        elif how == "i_start":
            report.count("bio_i_start")
        elif how == "i_continuation":
            report.count("bio_i_after_other_type")
        repair = "merged" if absorbed else ("extended" if how == "extended" else None)
        ents.append(_entity(text, cs, ce, t, label_key, repair=repair))
    ents.sort(key=_sort_key)
    m = {"corpus": corpus, "split": split, "line": line}
    if meta:
        m.update(meta)
    return Document(f"{corpus}/{split}/{index}", text, ents, lang, m)


def read_iob_tsv(path, *, corpus: str = "iob", split: str = "", label_key: str | None = None,
                 lang: str = "en", bare_type: str | None = None, columns: int | None = 2,
                 report: ReadReport | None = None) -> Iterator[Document]:
    """IOB TSV (``token<TAB>tag``, blank line between sentences); one Document per sentence.

    ``columns``: the exact number of tab-separated fields (None: any >= 2; token = first field,
    tag = last). ``bare_type``: the type of bare ``B``/``I`` tags (s800: "Species")."""
    return _read_columns(path, layout="tab", corpus=corpus, split=split,
                         label_key=label_key or corpus, lang=lang, bare_type=bare_type,
                         columns=columns, report=_report(report))


def read_conll(path, *, corpus: str = "conll", split: str = "", label_key: str | None = None,
               lang: str = "en", report: ReadReport | None = None) -> Iterator[Document]:
    """CoNLL columns separated by spaces (``index token POS chunk NER`` or ``token ... NER``);
    ``-DOCSTART-`` lines are skipped. The tag is the last field."""
    return _read_columns(path, layout="space", corpus=corpus, split=split,
                         label_key=label_key or corpus, lang=lang, bare_type=None, columns=None,
                         report=_report(report))


def _read_columns(path, *, layout, corpus, split, label_key, lang, bare_type, columns,
                  report) -> Iterator[Document]:
    """One Document per sentence of a column file (``layout``: see formats.bio_tags)."""
    path = Path(path)
    numbered = enumerate(_lines(path), 1)
    index = 0
    for item in scan_columns(numbered, path, layout=layout, strict=False, columns=columns,
                             bare_type=bare_type):
        if isinstance(item, DocStart):
            report.count("docstart")
            continue
        report.count("tokens", len(item.tokens))
        yield _sentence_doc(item.tokens, item.tags, sep=" ", corpus=corpus, split=split,
                            label_key=label_key, lang=lang, index=index, line=item.line,
                            path=path, report=report)
        index += 1


def read_char_bio(path, *, corpus: str = "char-bio", split: str = "", label_key: str | None = None,
                  lang: str = "zh", continuation: str = "extend",
                  report: ReadReport | None = None) -> Iterator[Document]:
    """Character BIO (``<char> <tag>`` per line, blank line between sentences), text joined by
    nothing. ``continuation="extend"`` repairs I-X runs after another type (see module doc);
    ``"new"`` keeps them as mentions of their own (the README counting rule)."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    data = read_bytes(path)
    # Decode without stripping a leading U+FEFF: here it may be the first character of the data.
    text = decode_text(data, str(path), encoding="utf_8")
    if text.startswith("\ufeff") and not is_char_line(text.split("\n", 1)[0].rstrip("\r")):
        text = text[1:]
    numbered = enumerate(_lines(path, text), 1)
    for index, item in enumerate(scan_columns(numbered, path, layout="char", strict=False)):
        report.count("tokens", len(item.tokens))
        yield _sentence_doc(item.tokens, item.tags, sep="", corpus=corpus, split=split,
                            label_key=label_key, lang=lang, index=index, line=item.line,
                            path=path, report=report, continuation=continuation)
