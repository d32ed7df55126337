"""Token-based readers: IOB TSV, CoNLL and character BIO (text reconstructed from tokens)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..document import Document
from ..errors import FormatError
from ..textio import decode_text, read_bytes
from .repairs import ReadReport, _entity, _lines, _report, _short, _sort_key, _where


# ---------------------------------------------------------------------------------------------
# Token / tag sequences (IOB TSV, CoNLL, character BIO)
# ---------------------------------------------------------------------------------------------
_TAG_CACHE: dict[tuple[str, str | None], tuple[str, str]] = {}


def _parse_tag(tag: str, bare_type: str | None, path, line) -> tuple[str, str]:
    key = (tag, bare_type)
    hit = _TAG_CACHE.get(key)
    if hit is not None:
        return hit
    if tag == "O":
        res = ("O", "")
    elif tag in ("B", "I"):
        if bare_type is None:
            raise FormatError(f"untyped tag {tag!r} (this reader expects B-<type>/I-<type>)", path, line)
        res = (tag, bare_type)
    elif len(tag) > 2 and tag[0] in "BI" and tag[1] == "-" and tag[2:].strip():
        res = (tag[0], tag[2:])
    else:
        raise FormatError(f"invalid tag {_short(tag)!r} (expected O, B-<type> or I-<type>)", path, line)
    if len(_TAG_CACHE) < 10000:
        _TAG_CACHE[key] = res
    return res


def _decode_tags(tags: list[tuple[str, str]], continuation: str = "new"
                 ) -> list[list]:
    """Mentions [start, end, type, how, absorbed] over token indices.

    A run starts at B-X or at I-X following O / another type / the start (the README rule). With
    ``continuation="extend"``, an I-X run directly after another type's tag is merged into the
    nearest adjacent top-level X mention or extended back over the adjacent chain (see module doc).
    ``how``: None, "i_start" (I- after O or at the start), "i_continuation" (I-X after another
    type, kept as its own mention), "extended", "merged" (the run merged into an earlier mention,
    which gets ``absorbed = True``).
    """
    out: list[list] = []
    top: list[list] = []
    i, n = 0, len(tags)
    while i < n:
        p, t = tags[i]
        if p == "O":
            i += 1
            continue
        j = i + 1
        while j < n and tags[j][0] == "I" and tags[j][1] == t:
            j += 1
        if p == "B":
            x = [i, j, t, None, False]
            out.append(x)
            top.append(x)
        elif i == 0 or tags[i - 1][0] == "O":
            x = [i, j, t, "i_start", False]
            out.append(x)
            top.append(x)
        elif continuation != "extend":
            x = [i, j, t, "i_continuation", False]
            out.append(x)
            top.append(x)
        else:
            k, start, merged = len(top) - 1, i, False
            while k >= 0 and top[k][1] == start:
                if top[k][2] == t:
                    top[k][1] = j
                    top[k][4] = True
                    out.append([i, j, t, "merged", False])  # marker only, skipped by the caller
                    del top[k + 1:]
                    merged = True
                    break
                start = top[k][0]
                k -= 1
            if not merged:
                x = [start, j, t, "extended", False]
                del top[k + 1:]
                top.append(x)
                out.append(x)
        i = j
    return out


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
    for s, e, t, how, absorbed in _decode_tags(tags, continuation):
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


def _check_token(tok: str, path, line) -> None:
    if tok == "":
        raise FormatError("empty token", path, line)


def read_iob_tsv(path, *, corpus: str = "iob", split: str = "", label_key: str | None = None,
                 lang: str = "en", bare_type: str | None = None, columns: int | None = 2,
                 report: ReadReport | None = None) -> Iterator[Document]:
    """IOB TSV (``token<TAB>tag``, blank line between sentences); one Document per sentence.

    ``columns``: the exact number of tab-separated fields (None: any >= 2; token = first field,
    tag = last). ``bare_type``: the type of bare ``B``/``I`` tags (s800: "Species")."""
    return _read_columns(path, sep="\t", corpus=corpus, split=split,
                         label_key=label_key or corpus, lang=lang, bare_type=bare_type,
                         columns=columns, conll=False, report=_report(report))


def read_conll(path, *, corpus: str = "conll", split: str = "", label_key: str | None = None,
               lang: str = "en", report: ReadReport | None = None) -> Iterator[Document]:
    """CoNLL columns separated by spaces (``index token POS chunk NER`` or ``token ... NER``);
    ``-DOCSTART-`` lines are skipped. The tag is the last field."""
    return _read_columns(path, sep=None, corpus=corpus, split=split, label_key=label_key or corpus,
                         lang=lang, bare_type=None, columns=None, conll=True,
                         report=_report(report))


def _read_columns(path, *, sep, corpus, split, label_key, lang, bare_type, columns, conll,
                  report) -> Iterator[Document]:
    path = Path(path)
    lines = _lines(path)
    tokens: list[str] = []
    tags: list[tuple[str, str]] = []
    first = 0
    index = 0
    docstart_only = False
    for no, line in enumerate(lines + [""], 1):
        if not line.strip():
            if tokens:
                report.count("tokens", len(tokens))
                yield _sentence_doc(tokens, tags, sep=" ", corpus=corpus, split=split,
                                    label_key=label_key, lang=lang, index=index, line=first,
                                    path=path, report=report)
                index += 1
                tokens, tags = [], []
            docstart_only = False
            continue
        fields = line.split(sep) if sep else line.split()
        if conll and len(fields) >= 2 and "-DOCSTART-" in fields[:2]:
            if tokens:
                raise FormatError("-DOCSTART- inside a sentence", path, no)
            report.count("docstart")
            docstart_only = True
            continue
        if docstart_only:
            raise FormatError("-DOCSTART- line followed by tokens without an empty line", path, no)
        if columns is not None and len(fields) != columns:
            raise FormatError(f"expected {columns} {'tab-' if sep == chr(9) else ''}separated "
                              f"fields, found {len(fields)}", path, no)
        if len(fields) < 2:
            raise FormatError(f"expected at least 2 fields (token and tag), found {len(fields)}",
                              path, no)
        if conll and len(fields) == 5 and fields[0].isdigit():
            tok = fields[1]
        else:
            tok = fields[0]
        _check_token(tok, path, no)
        if not tokens:
            first = no
        tokens.append(tok)
        tags.append(_parse_tag(fields[-1].strip(), bare_type, path, no))


_CHAR_LINE = re.compile(r"(.) (\S+)", re.S)


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
    if text.startswith("\ufeff") and not _CHAR_LINE.fullmatch(text.split("\n", 1)[0].rstrip("\r")):
        text = text[1:]
    lines = _lines(path, text)
    chars: list[str] = []
    tags: list[tuple[str, str]] = []
    first = index = 0
    for no, line in enumerate(lines + [""], 1):
        if line == "":
            if chars:
                report.count("tokens", len(chars))
                yield _sentence_doc(chars, tags, sep="", corpus=corpus, split=split,
                                    label_key=label_key, lang=lang, index=index, line=first,
                                    path=path, report=report, continuation=continuation)
                index += 1
                chars, tags = [], []
            continue
        m = _CHAR_LINE.fullmatch(line)
        if not m:
            raise FormatError(f"expected '<char> <tag>', found {_short(line)!r}", path, no)
        if not chars:
            first = no
        chars.append(m.group(1))
        tags.append(_parse_tag(m.group(2), None, path, no))
