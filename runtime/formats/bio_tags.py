"""BIO tag sequences: the tag grammar, decoding tags into spans, and the scanner of plain
token/tag column files. Used by the CoNLL format (:mod:`.conll`, strict) and by the corpus readers
of ``biotag.runtime.corpora`` (lenient).

Tags (:func:`parse_tag`):

* strict (user files): ``O`` (also written ``_``, ``-`` or empty), ``B-X``, ``I-X``, ``E-X``,
  ``S-X`` with any non-empty ``X``; anything else is a FormatError naming the document.
* lenient (training corpora): ``O``, ``B-X`` and ``I-X`` with an ``X`` that is not only
  whitespace, and bare ``B``/``I`` when the corpus gives their type (``bare_type``).

Decoding (:func:`decode`): a mention starts at ``B-X``, ``S-X``, or at an ``I-X``/``E-X`` that
does not continue a mention of type X, and runs over the ``I-X`` that follow, up to and with an
``E-X``; ``S-X`` is a one-token mention. ``continuation="extend"`` repairs ``I-X`` runs that follow
a tag of another type (the remains of flattened nesting; see ``biotag.runtime.corpora``).

Column lines (:func:`scan_columns`): one token per line, the token in the first field and the
tag in the last, a blank line between sentences. Layouts: ``"tab"`` (fields split at each tab),
``"space"`` (split at whitespace runs; CoNLL 2003 corpus files, with ``-DOCSTART-`` lines and an
optional leading index column), ``"auto"`` (tab when the line holds one, else whitespace; the
plain files of the CoNLL format) and ``"char"`` (``<one character> <tag>``, corpus files only; a
line is blank only when empty, since the character may be a space).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..document import Entity
from ..errors import FormatError
from ._base import make_entity, shorten

OUTSIDE = ("O", "")
_STRICT_OUTSIDE = ("O", "", "_", "-")
_CHAR_LINE = re.compile(r"(.) (\S+)", re.S)
_TAG_CACHE: dict[tuple[str, str | None], tuple[str, str]] = {}


def parse_tag(tag: str, *, strict: bool = True, bare_type: str | None = None, where=None,
              line: int | None = None, doc_id: str = "") -> tuple[str, str]:
    """``(prefix, type)`` of one tag: prefix ``B``/``I``/``E``/``S``, or ``("O", "")``."""
    if strict:
        if tag in _STRICT_OUTSIDE:
            return OUTSIDE
        if len(tag) < 3 or tag[1] != "-" or tag[0] not in "BIES":
            raise FormatError(f"document {doc_id!r}: bad tag {tag!r} (expected O, B-X, I-X, "
                              f"E-X or S-X)", where, line)
        return tag[0], tag[2:]
    key = (tag, bare_type)
    hit = _TAG_CACHE.get(key)
    if hit is not None:
        return hit
    if tag == "O":
        res = OUTSIDE
    elif tag in ("B", "I"):
        if bare_type is None:
            raise FormatError(f"untyped tag {tag!r} (this reader expects B-<type>/I-<type>)",
                              where, line)
        res = (tag, bare_type)
    elif len(tag) > 2 and tag[0] in "BI" and tag[1] == "-" and tag[2:].strip():
        res = (tag[0], tag[2:])
    else:
        raise FormatError(f"invalid tag {shorten(tag)!r} (expected O, B-<type> or I-<type>)",
                          where, line)
    if len(_TAG_CACHE) < 10000:
        _TAG_CACHE[key] = res
    return res


def is_char_line(line: str) -> bool:
    """Whether ``line`` is a ``<character> <tag>`` line."""
    return _CHAR_LINE.fullmatch(line) is not None


def decode(tags: list[tuple[str, str]], continuation: str = "new") -> list[list]:
    """Mentions ``[start, end, type, how, absorbed]`` over token indices (end exclusive).

    ``how``: None (started by ``B-``/``S-``), "i_start" (``I-``/``E-`` at the start or after
    ``O``), "i_continuation" (``I-``/``E-`` right after another mention's tag, kept as its own
    mention), and with ``continuation="extend"``, for such an ``I-X`` run: "extended" (the run
    is extended back over the directly adjacent chain of top-level mentions to its start) or
    "merged" (the nearest adjacent top-level X mention is extended over the run instead; that
    mention gets ``absorbed = True`` and the "merged" entry only marks the run, it is no mention).
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
        if p in "BI":
            while j < n:
                q, u = tags[j]
                if u != t or q not in "IE":
                    break
                j += 1
                if q == "E":
                    break
        if p in "BS":
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
                    out.append([i, j, t, "merged", False])
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


def decode_columns(text: str, spans: list[tuple[int, int]], rows: list[list[str]],
                   linenos: list[int], doc_id: str, where) -> list[Entity]:
    """Entities of one document from strict tag columns: ``rows[i]`` holds the tags of token
    ``spans[i]`` (a missing column is ``O``); each column is decoded on its own, in order.

    Errors come in reading order: a bad tag is raised after the mentions that end before its
    token have been made (an empty token span there raises first)."""
    ncols = max((len(r) for r in rows), default=0)
    out = []
    for k in range(ncols):
        tags, bad = [], None
        for row, lineno in zip(rows, linenos):
            try:
                tags.append(parse_tag(row[k] if k < len(row) else "O", where=where, line=lineno,
                                      doc_id=doc_id))
            except FormatError as exc:
                bad = exc
                break
        for s, e, typ, _, _ in decode(tags):
            if bad is not None and e == len(tags) and tags[-1][0] in "BI":
                break  # still open at the bad tag
            out.append(make_entity(text, spans[s][0], spans[e - 1][1], typ, where=where,
                                   line=linenos[s], doc_id=doc_id))
        if bad is not None:
            raise bad
    return out


# -- column files --------------------------------------------------------------------------------
@dataclass
class Sentence:
    """The token lines of one sentence. ``tags``: in lenient mode ``(prefix, type)`` pairs parsed
    at their line; in strict mode the tag strings (decoded with the document, whose id the
    errors name)."""

    line: int                                       # the line of the first token
    tokens: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    lines: list = field(default_factory=list)       # the line of each token


@dataclass
class DocStart:
    """A ``-DOCSTART-`` line."""

    line: int


def split_fields(line: str, layout: str) -> list[str]:
    if layout == "tab" or (layout == "auto" and "\t" in line):
        return line.split("\t")
    return line.split()


def scan_columns(lines: Iterable[tuple[int, str]], where, *, layout: str = "auto",
                 strict: bool = True, columns: int | None = None,
                 bare_type: str | None = None) -> Iterator[Sentence | DocStart]:
    """Sentences and ``-DOCSTART-`` lines of numbered lines (CR already removed), in file order.

    Strict (the plain files of the CoNLL format, ``layout="auto"``): lines of one field starting
    with ``#`` are comments; a line whose first field is ``-DOCSTART-`` ends the sentence.
    Lenient (corpus files): ``columns`` is the exact number of fields (None: at least 2), tokens
    must not be empty, and in the ``"space"`` layout a ``-DOCSTART-`` line (in the first or second
    field) must stand alone between blank lines, and a line of 5 fields whose first is a number
    has its token in the second field. Malformed lines raise FormatError (file:line)."""
    cur: Sentence | None = None
    docstart_only = False
    char = layout == "char"
    for no, line in lines:
        if (line == "") if char else (not line.strip()):
            if cur is not None:
                yield cur
                cur = None
            docstart_only = False
            continue
        if char:
            m = _CHAR_LINE.fullmatch(line)
            if not m:
                raise FormatError(f"expected '<char> <tag>', found {shorten(line)!r}", where, no)
            tok, tag = m.group(1), parse_tag(m.group(2), strict=False, where=where, line=no)
        elif strict:
            fields = split_fields(line, layout)
            if len(fields) < 2 and line.startswith("#"):
                continue
            if fields[0] == "-DOCSTART-":
                if cur is not None:
                    yield cur
                    cur = None
                yield DocStart(no)
                continue
            if len(fields) < 2:
                raise FormatError(f"expected 'token<TAB>tag', got {line[:60]!r}", where, no)
            tok, tag = fields[0], fields[-1]
        else:
            fields = split_fields(line, layout)
            space = layout == "space"
            if space and len(fields) >= 2 and "-DOCSTART-" in fields[:2]:
                if cur is not None:
                    raise FormatError("-DOCSTART- inside a sentence", where, no)
                yield DocStart(no)
                docstart_only = True
                continue
            if docstart_only:
                raise FormatError("-DOCSTART- line followed by tokens without an empty line",
                                  where, no)
            if columns is not None and len(fields) != columns:
                raise FormatError(f"expected {columns} {'tab-' if layout == 'tab' else ''}"
                                  f"separated fields, found {len(fields)}", where, no)
            if len(fields) < 2:
                raise FormatError(f"expected at least 2 fields (token and tag), found "
                                  f"{len(fields)}", where, no)
            tok = fields[1] if space and len(fields) == 5 and fields[0].isdigit() else fields[0]
            if tok == "":
                raise FormatError("empty token", where, no)
            tag = parse_tag(fields[-1].strip(), strict=False, bare_type=bare_type, where=where,
                            line=no)
        if cur is None:
            cur = Sentence(no)
        cur.tokens.append(tok)
        cur.tags.append(tag)
        cur.lines.append(no)
    if cur is not None:
        yield cur
