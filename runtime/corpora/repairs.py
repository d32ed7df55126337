"""Entity types of a corpus, the read report (every repair and drop counted, never silent) and
the span repairs shared by the readers (see the package docstring)."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..document import Entity
from ..errors import FormatError
from ..labels import LABEL_MAP
from ..textio import read_text


# Mappings for corpora that labels.LABEL_MAP does not cover (the extra/ corpora). Types not
# listed pass through unchanged. Injective within each corpus, like LABEL_MAP.
EXTRA_LABEL_MAP: dict[str, dict[str, str]] = {
    "bionlp11id": {"Organism": "Species"},
    "bionlp13cg": {"Gene_or_gene_product": "Gene", "Simple_chemical": "Chemical",
                   "Organism": "Species", "Cancer": "Disease"},
    "bionlp13pc": {"Gene_or_gene_product": "Gene", "Simple_chemical": "Chemical"},
}


def canonical_type(label_key: str, original: str) -> str:
    """Canonical type of a corpus's own type (labels.LABEL_MAP, then EXTRA_LABEL_MAP, else as is)."""
    if label_key in LABEL_MAP:
        return LABEL_MAP[label_key].get(original, original)
    return EXTRA_LABEL_MAP.get(label_key, {}).get(original, original)


# ---------------------------------------------------------------------------------------------
# Read report
# ---------------------------------------------------------------------------------------------
@dataclass
class ReadReport:
    """What a reader saw and did: mentions counted by the README rule, repairs, drops."""

    corpus: str = ""
    split: str = ""
    mentions: int = 0                      # raw mentions (README counting rule), kept or not
    types: Counter = field(default_factory=Counter)   # raw mentions per original type
    repaired: int = 0
    dropped: int = 0
    counters: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 20

    def mention(self, orig_type: str, n: int = 1) -> None:
        self.mentions += n
        self.types[orig_type] += n

    def count(self, kind: str, n: int = 1) -> None:
        self.counters[kind] += n

    def _example(self, kind: str, where: str, what: str) -> None:
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{kind}: {where}: {what}")

    def repair(self, kind: str, where: str = "", what: str = "") -> None:
        self.repaired += 1
        self.counters[kind] += 1
        self._example(kind, where, what)

    def drop(self, kind: str, where: str = "", what: str = "") -> None:
        self.dropped += 1
        self.counters[kind] += 1
        self._example(kind, where, what)

    def to_json(self) -> dict:
        return {"corpus": self.corpus, "split": self.split, "mentions": self.mentions,
                "types": dict(self.types.most_common()), "repaired": self.repaired,
                "dropped": self.dropped, "counters": dict(sorted(self.counters.items())),
                "examples": list(self.examples)}


def _report(report: ReadReport | None) -> ReadReport:
    return report if report is not None else ReadReport()


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _lines(path: Path, text: str | None = None) -> list[str]:
    """Lines split on LF only (never on U+2028, U+0085 ... which may be data), CR stripped."""
    if text is None:
        text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _where(path, line) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _occurrences(text: str, sub: str) -> list[int]:
    out, i = [], text.find(sub)
    while i >= 0:
        out.append(i)
        i = text.find(sub, i + 1)
    return out


def _resolve_span(text: str, start: int, mention: str, report: ReadReport, where: str
                  ) -> tuple[int, int, str | None] | None:
    """Check ``text[start:start+len(mention)] == mention``; repair (case / move) or drop.

    Returns (start, end, repair-kind or None) or None when the mention is dropped (counted)."""
    end = start + len(mention)
    if not mention:
        report.drop("empty_mention", where, "empty mention")
        return None
    if 0 <= start and end <= len(text):
        got = text[start:end]
        if got == mention:
            return start, end, None
        if got.lower() == mention.lower() or got.casefold() == mention.casefold():
            report.repair("offset_mismatch_case", where, f"{mention!r} -> {got!r} at {start}")
            return start, end, "case"
    occ = _occurrences(text, mention)
    if len(occ) == 1:
        report.repair("offset_mismatch_moved", where, f"{mention!r} {start} -> {occ[0]}")
        return occ[0], occ[0] + len(mention), "moved"
    kind = "offset_mismatch_ambiguous" if occ else "offset_mismatch_not_found"
    report.drop(kind, where, f"{mention!r} at {start} ({len(occ)} occurrences)")
    return None


def _entity(text: str, start: int, end: int, orig_type: str, label_key: str, **meta) -> Entity:
    m = {"orig_type": orig_type}
    m.update({k: v for k, v in meta.items() if v is not None})
    return Entity(start, end, canonical_type(label_key, orig_type), text[start:end], meta=m)


def _sort_key(e: Entity):
    return (e.start, -e.end, e.type)


def _as_int(v, what: str, path, line) -> int:
    if isinstance(v, bool):
        raise FormatError(f"{what} must be an integer, found {v!r}", path, line)
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
        return int(v)
    raise FormatError(f"{what} must be an integer, found {_short(repr(v))}", path, line)
