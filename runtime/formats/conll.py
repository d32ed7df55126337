"""CoNLL-style token lines with character offsets, one tag column per nesting layer::

    # id = d1
    # text = Heart attack\\nin 腹部
    Heart<TAB>0<TAB>5<TAB>B-Disease<TAB>O
    attack<TAB>6<TAB>12<TAB>I-Disease<TAB>O
    <blank line: a line break of the text, outside any entity>
    in<TAB>13<TAB>15<TAB>O<TAB>O
    ...

* ``# text`` holds the whole document text with ``\\`` ``\\n`` ``\\r`` ``\\t``, other control
  characters and U+0085 (``\\xHH``) and U+2028/U+2029 (``\\uHHHH``) escaped, so the text is
  reconstructed exactly; ``# lang`` and ``# meta`` (JSON) are written when set. The token column
  is escaped the same way.
* Tokens are the words of ``runtime.words.segment_words``, additionally cut at every entity
  boundary that falls inside a word, and, for an entity that begins or ends in whitespace, the
  whitespace piece at that edge becomes a token too. So every entity -- including ones that do
  not follow word boundaries -- is carried exactly: it runs from its B token's start to its last
  token's end.
* Tags are BIO (``B-X``/``I-X``/``O``). Entities go to the first tag column where they overlap no
  entity already placed; placing outer entities first, column k holds the k-th nesting layer
  (overlapping entities of different types also get different columns). Every token line of a
  file has the same number of tag columns.
* A blank line separates the tokens of two text lines unless an entity spans the line break;
  a blank line and a new ``# id`` line separate documents.
* Scores, sources and entity meta are not carried.

Reading also accepts BIOES tags (``E-X``, ``S-X``), ``I-X`` without ``B-X`` (starts an entity),
and plain two-column ``token<TAB>tag`` files without offsets (the text is then rebuilt from the
tokens joined by spaces, sentences by line feeds, one document per ``-DOCSTART-`` or file).
Tags and plain token lines are read by :mod:`.bio_tags` in its strict mode (the corpus readers use
its lenient mode).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..document import Document, Entity
from ..errors import FormatError
from ..words import segment_words
from ._base import check_docs, check_type, read_input, write_output
from .bio_tags import DocStart, decode_columns, scan_columns

EXTENSIONS = (".conll", ".conllx", ".bio", ".iob")
_TOKEN_LINE = re.compile(r"([^\t]*)\t(-?[0-9]+)\t(-?[0-9]+)((?:\t[^\t]*)*)\Z")
_ESC = re.compile("[\\\\\x00-\x1f\x7f\x85\u2028\u2029]")
_UNESC = re.compile(r"\\(?:x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|(.))", re.S)
_NAMED = {"\n": "n", "\r": "r", "\t": "t", "\\": "\\"}
_NAMED_BACK = {v: k for k, v in _NAMED.items()}


def escape(s: str) -> str:
    """Backslash-escape ``\\``, control characters and the Unicode line separators."""
    def rep(m):
        c = m.group()
        if c in _NAMED:
            return "\\" + _NAMED[c]
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
    return _ESC.sub(rep, s)


def unescape(s: str) -> str:
    def rep(m):
        if m.group(1) or m.group(2):
            return chr(int(m.group(1) or m.group(2), 16))
        if m.group(3) in _NAMED_BACK:
            return _NAMED_BACK[m.group(3)]
        raise ValueError(f"unknown escape \\{m.group(3)}")
    return _UNESC.sub(rep, s)


# -- writing -------------------------------------------------------------------------------------
def tokens_for(doc: Document) -> list[tuple[int, int]]:
    """Token spans: words cut at entity boundaries, plus whitespace pieces at entity edges."""
    text = doc.text
    starts = {e.start for e in doc.entities}
    ends = {e.end for e in doc.entities}
    words = segment_words(text)
    cuts = sorted({0, len(text)} | starts | ends | {w.start for w in words} | {w.end for w in words})
    in_word = bytearray(len(text))
    for w in words:
        in_word[w.start:w.end] = b"\x01" * (w.end - w.start)
    out = []
    for a, b in zip(cuts, cuts[1:]):
        if a >= b:
            continue
        if in_word[a] or a in starts or b in ends:
            out.append((a, b))
    return out


def layers_for(doc: Document) -> list[list[Entity]]:
    layers: list[list[Entity]] = []
    for e in doc.sorted_entities():
        for layer in layers:
            if not any(e.overlaps(o) for o in layer):
                layer.append(e)
                break
        else:
            layers.append([e])
    return layers


def format_doc(doc: Document, ncols: int | None = None, where=None) -> str:
    for e in doc.entities:
        check_type(e, doc, "conll", where)
    toks = tokens_for(doc)
    layers = layers_for(doc)
    ncols = max(ncols or 1, len(layers), 1)
    index = {t[0]: i for i, t in enumerate(toks)}
    tags = [["O"] * ncols for _ in toks]
    inside = [False] * (len(toks) + 1)  # inside[i]: some entity spans the gap before token i
    for k, layer in enumerate(layers):
        for e in layer:
            i = index[e.start]
            tags[i][k] = "B-" + e.type
            j = i + 1
            while j < len(toks) and toks[j][1] <= e.end:
                tags[j][k] = "I-" + e.type
                inside[j] = True
                j += 1
    lines = [f"# id = {escape(doc.id)}", f"# text = {escape(doc.text)}"]
    if doc.lang is not None:
        lines.append(f"# lang = {escape(doc.lang)}")
    if doc.meta:
        lines.append(f"# meta = {json.dumps(doc.meta, ensure_ascii=True, sort_keys=True)}")
    prev_end = None
    for i, (a, b) in enumerate(toks):
        if prev_end is not None and not inside[i] and re.search(r"[\r\n]", doc.text[prev_end:a]):
            lines.append("")
        lines.append("\t".join([escape(doc.text[a:b]), str(a), str(b)] + tags[i]))
        prev_end = b
    return "".join(line + "\n" for line in lines)


def dumps(docs, where=None) -> str:
    docs = check_docs(docs)
    ncols = max((len(layers_for(d)) for d in docs), default=1)
    return "\n".join(format_doc(d, ncols, where) for d in docs)


# -- reading -------------------------------------------------------------------------------------
class _Doc:
    def __init__(self, doc_id, line):
        self.id, self.line = doc_id, line
        self.text = None
        self.lang = None
        self.meta = {}
        self.tokens = []  # (lineno, token, start, end, tags)


def loads(text: str, where="<input>") -> list[Document]:
    raw: list[_Doc] = []
    cur = None
    plain = []  # lines of a plain token/tag file
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        m = _TOKEN_LINE.match(line)
        if m:
            if cur is None:
                raise FormatError("token line 'token<TAB>start<TAB>end<TAB>tag...' before any "
                                  "'# id = ...' line", where, lineno)
            tok, a, b, rest = m.groups()
            cur.tokens.append((lineno, tok, int(a), int(b), rest[1:].split("\t") if rest else []))
            continue
        if line.startswith("#") and "\t" not in line and not plain:
            key, sep, value = line[1:].lstrip(" ").partition(" = ")
            if not sep and key.rstrip() in ("id =", "text =", "lang =", "meta ="):
                key, sep, value = key.rstrip()[:-2], " = ", ""
            if sep and key in ("id", "text", "lang", "meta"):
                try:
                    if key == "id":
                        cur = _Doc(unescape(value), lineno)
                        raw.append(cur)
                    elif cur is None:
                        raise FormatError(f"'# {key}' line before any '# id = ...' line",
                                          where, lineno)
                    elif key == "text":
                        cur.text = unescape(value)
                    elif key == "lang":
                        cur.lang = unescape(value)
                    else:
                        cur.meta = json.loads(value)
                        if not isinstance(cur.meta, dict):
                            raise ValueError("not a JSON object")
                except ValueError as exc:
                    raise FormatError(f"bad '# {key}' line: {exc}", where, lineno) from None
            continue  # other comments are ignored
        if not raw and (plain or line.strip()):
            plain.append((lineno, line))  # a plain token/tag file, without offsets
            continue
        if line.strip():
            raise FormatError(f"not a token line 'token<TAB>start<TAB>end<TAB>tag...': "
                              f"{line[:60]!r}", where, lineno)
    if plain and not raw:
        return _plain(plain, where)
    return [_document(d, where) for d in raw]


def _document(d: _Doc, where) -> Document:
    if d.text is None:  # no '# text': rebuild from the tokens at their offsets
        text = ""
        for lineno, tok, a, b, _ in d.tokens:
            tok = _unesc_token(tok, where, lineno)
            if a < len(text) or b - a != len(tok):
                raise FormatError(f"document {d.id!r}: token {tok!r} at [{a}, {b}) overlaps the "
                                  f"previous token or has the wrong length", where, lineno)
            text += " " * (a - len(text)) + tok
        d.text = text
    spans = []
    prev = 0
    for lineno, tok, a, b, _ in d.tokens:
        tok = _unesc_token(tok, where, lineno)
        if not (0 <= a < b <= len(d.text)):
            raise FormatError(f"document {d.id!r}: token [{a}, {b}) lies outside the text "
                              f"(length {len(d.text)}) or is empty", where, lineno)
        if a < prev:
            raise FormatError(f"document {d.id!r}: token [{a}, {b}) overlaps or comes before the "
                              f"previous token", where, lineno)
        if d.text[a:b] != tok:
            raise FormatError(f"document {d.id!r}: token {tok!r} does not match the document text "
                              f"{d.text[a:b]!r} at [{a}, {b})", where, lineno)
        spans.append((a, b))
        prev = b
    entities = decode_columns(d.text, spans, [t[4] for t in d.tokens], [t[0] for t in d.tokens],
                              d.id, where)
    return Document(d.id, d.text, entities, d.lang, d.meta)


def _unesc_token(tok, where, lineno):
    try:
        return unescape(tok)
    except ValueError as exc:
        raise FormatError(f"bad token: {exc}", where, lineno) from None


def _plain(lines, where) -> list[Document]:
    """A plain ``token<TAB or space>...tag`` file: text rebuilt (tokens joined by spaces,
    sentences by line feeds), one document per -DOCSTART-."""
    name = Path(str(where)).stem or "doc"
    docs, text, spans, tags, linenos = [], "", [], [], []

    def flush():
        nonlocal text, spans, tags, linenos
        if spans or text:
            doc_id = f"{name}-{len(docs) + 1}"
            docs.append(Document(doc_id, text, decode_columns(text, spans, tags, linenos, doc_id,
                                                              where)))
        text, spans, tags, linenos = "", [], [], []

    for item in scan_columns(lines, where, layout="auto", strict=True):
        if isinstance(item, DocStart):
            flush()
            continue
        for k, (tok, tag, lineno) in enumerate(zip(item.tokens, item.tags, item.lines)):
            if text:
                text += " " if k else "\n"
            spans.append((len(text), len(text) + len(tok)))
            text += tok
            tags.append([tag])
            linenos.append(lineno)
    flush()
    return docs


def read(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> list[Document]:
    return loads(read_input(path, encoding, errors), path)


def write(docs, path: str | os.PathLike) -> None:
    write_output(path, dumps(docs, path))
