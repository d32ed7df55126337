"""User dictionaries (hospital drug names, local abbreviations): ``term<TAB>type`` or CSV rows.

Matching works on words (runtime.words), so a term matches only on word boundaries; longest
matches are found at every start position (nested matches of shorter terms are kept too).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .document import Entity
from .errors import FormatError
from .textio import read_text
from .words import Word, segment_words


class UserDictionary:
    def __init__(self, entries: list[tuple[str, str]], ignore_case: bool = True):
        self.ignore_case = ignore_case
        self.terms: dict[tuple[str, ...], set[str]] = {}
        self.max_len = 0
        for term, typ in entries:
            key = self._key([w.text for w in segment_words(term)])
            if key:
                self.terms.setdefault(key, set()).add(typ)
                self.max_len = max(self.max_len, len(key))

    def _key(self, words: list[str]) -> tuple[str, ...]:
        return tuple(w.casefold() if self.ignore_case else w for w in words)

    @classmethod
    def load(cls, path: str | Path, ignore_case: bool = True) -> "UserDictionary":
        text = read_text(path)
        dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
        entries = []
        for k, row in enumerate(csv.reader(io.StringIO(text), dialect=dialect), start=1):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise FormatError("expected 'term<TAB>type'", path, k)
            if k == 1 and row[0].strip().lower() == "term" and row[1].strip().lower() == "type":
                continue
            entries.append((row[0].strip(), row[1].strip()))
        if not entries:
            raise FormatError("dictionary has no entries", path)
        return cls(entries, ignore_case)

    def match(self, text: str, words: list[Word] | None = None) -> list[Entity]:
        words = words if words is not None else segment_words(text)
        keys = [w.text.casefold() if self.ignore_case else w.text for w in words]
        out = []
        for i in range(len(words)):
            for L in range(min(self.max_len, len(words) - i), 0, -1):
                types = self.terms.get(tuple(keys[i:i + L]))
                if types:
                    a, b = words[i].start, words[i + L - 1].end
                    out.extend(Entity(a, b, t, text[a:b], None, "dictionary") for t in sorted(types))
        return out
