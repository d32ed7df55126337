"""JSON readers: GENIA JSONL, CMeEE JSON and ChineseBLUE JSONL."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..document import Document
from ..errors import FormatError
from ..textio import read_text
from .repairs import ReadReport, _as_int, _entity, _lines, _report, _resolve_span, _sort_key, _where


# ---------------------------------------------------------------------------------------------
# JSON formats
# ---------------------------------------------------------------------------------------------
def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    text = read_text(path)
    for no, line in enumerate(_lines(path, text), 1):
        if not line.strip():
            continue
        try:
            yield no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON ({exc.msg}, column {exc.colno})", path, no) from None


_JSON_WS = re.compile(r"[ \t\n\r]*")


def _iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Items of a JSON array with the line each starts on; JSON lines are accepted as well."""
    text = read_text(path)
    i = _JSON_WS.match(text).end()
    if text[i:i + 1] != "[":
        yield from _iter_jsonl(path)
        return
    dec = json.JSONDecoder()
    line, last = 1 + text.count("\n", 0, i), i
    i += 1
    expect_item = True
    while True:
        i = _JSON_WS.match(text, i).end()
        if i >= len(text):
            raise FormatError("unterminated JSON array", path, text.count("\n") + 1)
        if text[i] == "]":
            rest = _JSON_WS.match(text, i + 1).end()
            if rest != len(text):
                raise FormatError("text after the JSON array", path, 1 + text.count("\n", 0, rest))
            return
        if not expect_item:
            raise FormatError("expected ',' or ']' in the JSON array", path, 1 + text.count("\n", 0, i))
        line += text.count("\n", last, i)
        last = i
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON ({exc.msg}, column {exc.colno})", path, exc.lineno) from None
        yield line, obj
        i = _JSON_WS.match(text, end).end()
        if text[i:i + 1] == ",":
            i += 1
            expect_item = True
        else:
            expect_item = False


def _text_records(records: Iterator[tuple[int, Any]], field: str, path: Path
                  ) -> Iterator[tuple[int, int, str, list]]:
    """(index, line, text, mention list) of records ``{"text": str, field: [mentions]}``."""
    for index, (no, rec) in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            raise FormatError("expected an object with a 'text' string", path, no)
        raw = rec.get(field) or []
        if not isinstance(raw, list):
            raise FormatError(f"'{field}' must be a list", path, no)
        yield index, no, rec["text"], raw


def _sentence_doc(corpus: str, split: str, index: int, no: int, text: str, ents: list, lang: str) -> Document:
    ents.sort(key=_sort_key)
    return Document(f"{corpus}/{split}/{index}", text, ents, lang, {"corpus": corpus, "split": split, "line": no})


def read_genia_jsonl(path, *, corpus: str = "genia", split: str = "", label_key: str | None = None,
                     lang: str = "en", report: ReadReport | None = None) -> Iterator[Document]:
    """GENIA JSON lines: tokens + nested token spans (end exclusive). Tokens may contain spaces."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    for index, (no, rec) in enumerate(_iter_jsonl(path)):
        if not isinstance(rec, dict) or not isinstance(rec.get("tokens"), list):
            raise FormatError("expected an object with a 'tokens' list", path, no)
        tokens = rec["tokens"]
        for t in tokens:
            if not isinstance(t, str) or t == "":
                raise FormatError(f"tokens must be non-empty strings, found {t!r}", path, no)
        mentions = rec.get("entity_mentions") or []
        if not isinstance(mentions, list):
            raise FormatError("'entity_mentions' must be a list", path, no)
        text = " ".join(tokens)
        starts, pos = [], 0
        for t in tokens:
            starts.append(pos)
            pos += len(t) + 1
        report.count("tokens", len(tokens))
        report.count("tokens_containing_space", sum(1 for t in tokens if " " in t))
        ents = []
        for m in mentions:
            if not isinstance(m, dict) or "entity_type" not in m:
                raise FormatError("each entity mention needs 'start', 'end', 'entity_type'", path, no)
            s = _as_int(m.get("start"), "'start'", path, no)
            e = _as_int(m.get("end"), "'end'", path, no)
            typ = str(m["entity_type"])
            report.mention(typ)
            if not 0 <= s < e <= len(tokens):
                report.drop("token_span_out_of_range", _where(path, no), f"[{s}, {e}) {typ}")
                continue
            cs, ce = starts[s], starts[e - 1] + len(tokens[e - 1])
            if "text" in m and m["text"] != text[cs:ce]:
                report.count("text_mismatch")  # token indices are authoritative
            ents.append(_entity(text, cs, ce, typ, label_key))
        ents.sort(key=_sort_key)
        meta = {"corpus": corpus, "split": split, "line": no}
        for k in ("doc_id", "sent_id"):
            if k in rec:
                meta[k] = rec[k]
        yield Document(f"{corpus}/{split}/{index}", text, ents, lang, meta)


def read_cmeee_json(path, *, corpus: str = "cmeee", split: str = "", label_key: str | None = None,
                    lang: str = "zh", report: ReadReport | None = None) -> Iterator[Document]:
    """CMeEE JSON array of ``{"text", "entities": [{"start_idx", "end_idx", "type", "entity"}]}``
    with ``end_idx`` inclusive. Characters such as U+FEFF are kept (they count in offsets)."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    for index, no, text, raw in _text_records(_iter_json_records(path), "entities", path):
        ents = []
        where = _where(path, no)
        for m in raw:
            if not isinstance(m, dict) or "type" not in m:
                raise FormatError("each entity needs 'start_idx', 'end_idx', 'type'", path, no)
            s = _as_int(m.get("start_idx"), "'start_idx'", path, no)
            e = _as_int(m.get("end_idx"), "'end_idx'", path, no) + 1
            typ = str(m["type"])
            report.mention(typ)
            mention = m.get("entity")
            repair = None
            if isinstance(mention, str):
                if text[s:e] != mention or s < 0:
                    res = _resolve_span(text, s, mention, report, where)
                    if res is None:
                        continue
                    s, e, repair = res
            elif not 0 <= s < e <= len(text):
                report.drop("offset_out_of_range", where, f"[{s}, {e}) {typ}")
                continue
            ents.append(_entity(text, s, e, typ, label_key, repair=repair,
                                mention=mention if repair else None))
        yield _sentence_doc(corpus, split, index, no, text, ents, lang)


def read_chineseblue_jsonl(path, *, corpus: str = "chineseblue", split: str = "",
                           label_key: str | None = None, lang: str = "zh",
                           report: ReadReport | None = None) -> Iterator[Document]:
    """ChineseBLUE JSON lines ``{"text", "mention_data": [{"mention", "type"|"label", "offset"}]}``;
    ``offset`` (str or int) is the start, end = offset + len(mention). Mismatching offsets are
    repaired or dropped (module doc)."""
    path = Path(path)
    report = _report(report)
    label_key = label_key or corpus
    for index, no, text, raw in _text_records(_iter_jsonl(path), "mention_data", path):
        ents = []
        where = _where(path, no)
        for m in raw:
            if not isinstance(m, dict) or not isinstance(m.get("mention"), str) or "offset" not in m:
                raise FormatError("each mention needs 'mention', 'offset' and 'type' or 'label'",
                                  path, no)
            typ = m.get("type", m.get("label"))
            if not isinstance(typ, str) or not typ:
                raise FormatError("mention without 'type' / 'label'", path, no)
            if isinstance(m["offset"], int) and not isinstance(m["offset"], bool):
                report.count("integer_offsets")
            start = _as_int(m["offset"], "'offset'", path, no)
            report.mention(typ)
            res = _resolve_span(text, start, m["mention"], report, where)
            if res is None:
                continue
            s, e, repair = res
            ents.append(_entity(text, s, e, typ, label_key, repair=repair,
                                mention=m["mention"] if repair else None, guid=m.get("guid")))
        yield _sentence_doc(corpus, split, index, no, text, ents, lang)
