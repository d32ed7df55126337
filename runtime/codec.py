"""The symbolic tag codec: a sentence rewritten with entity boundaries marked by symbols.

Two formats, both over a list of words (``runtime.words``), entities as word-index spans:

* Format P (LLMNER paper): one line per entity type, ``Type:  w w ⟦ w ⟦ w ⟧ w ⟧ w``. Same-type
  nesting uses nested brackets; cross-type overlap lives on separate lines.
* Format S (single pass): one copy of the sentence, typed opening markers and a generic closer:
  ``w ⟦Disease w ⟦Anatomy w ⟧ w ⟧ w``. Cross-type nesting fits in one string.

Units are separated by single spaces. Markers are ``⟦``, ``⟦<Type>`` and ``⟧``; a word that
starts with ``⟦``, ``⟧`` or ``\\`` is escaped with a leading backslash, so a text can never be
mistaken for a marker. For the language model each marker is one special token (see
``MARKER_TOKENS``) that ordinary text never tokenizes to.

``decode`` is total: any string returns valid spans on the input words plus diagnostics.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Sequence

from .labels import TYPE_ORDER

FORMAT_P = "P"
FORMAT_S = "S"
FORMATS = (FORMAT_P, FORMAT_S)
OPEN = "\u27e6"   # ⟦
CLOSE = "\u27e7"  # ⟧
ESCAPE = "\\"
P_SEP = ":  "     # "Type:  sentence"
MAX_DEPTH = 6     # deepest nesting the decoders allow


class Span(NamedTuple):
    """An entity as a word-index span [start, end) with a type."""

    start: int
    end: int
    type: str


@dataclass
class Diagnostics:
    """What decode had to repair. ``ok`` is True when the output was well-formed."""

    messages: list[str] = field(default_factory=list)
    skipped_words: int = 0
    unknown_units: int = 0
    unbalanced: int = 0
    unknown_types: int = 0
    empty_spans: int = 0
    bad_lines: int = 0

    @property
    def ok(self) -> bool:
        return not (self.skipped_words or self.unknown_units or self.unbalanced
                    or self.unknown_types or self.empty_spans or self.bad_lines)

    def note(self, kind: str, msg: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.messages) < 50:
            self.messages.append(msg)


# --- marker tokens for the language model -----------------------------------------------------
# Gemma 3's vocabulary has 6,242 control tokens <unused0>...; text tokenized without special
# parsing never produces them, so a marker cannot collide with input text.
def marker_token_texts() -> dict[str, str]:
    """Marker unit -> the special token text that encodes it (stable: types are only appended)."""
    table = {OPEN: "<unused0>", CLOSE: "<unused1>"}
    for k, t in enumerate(TYPE_ORDER):
        table[OPEN + t] = f"<unused{2 + k}>"
    return table


MARKER_TOKENS = marker_token_texts()


def is_marker(unit: str) -> bool:
    return unit.startswith(OPEN) or unit == CLOSE


def escape_word(w: str) -> str:
    return ESCAPE + w if w.startswith((OPEN, CLOSE, ESCAPE)) else w


def unescape_word(u: str) -> str:
    return u[1:] if u.startswith(ESCAPE) and len(u) > 1 else u


# --- encoding ----------------------------------------------------------------------------------
def _nest_order(spans: Iterable[Span]) -> list[Span]:
    return sorted(set(spans), key=lambda s: (s.start, -s.end, s.type))


def encodable(spans: Iterable[Span], fmt: str) -> tuple[list[Span], list[Span]]:
    """Split spans into those the format can carry and those it cannot (crossing spans: in P
    only within one type; in S across all types). Earlier/longer spans win."""
    kept: list[Span] = []
    dropped: list[Span] = []
    for s in _nest_order(spans):
        if s.end <= s.start:
            dropped.append(s)
            continue
        rivals = kept if fmt == FORMAT_S else [k for k in kept if k.type == s.type]
        if any(k.start < s.start < k.end < s.end for k in rivals):
            dropped.append(s)
        else:
            kept.append(s)
    return kept, dropped


def _units_with_markers(words: Sequence[str], spans: list[Span], typed: bool) -> list[str]:
    opens: dict[int, list[Span]] = {}
    for s in _nest_order(spans):
        opens.setdefault(s.start, []).append(s)
    units: list[str] = []
    stack: list[Span] = []
    for i in range(len(words) + 1):
        while stack and stack[-1].end == i:
            stack.pop()
            units.append(CLOSE)
        if i == len(words):
            break
        for s in opens.get(i, []):
            stack.append(s)
            units.append(OPEN + s.type if typed else OPEN)
        units.append(escape_word(words[i]))
    return units


def encode(words: Sequence[str], spans: Iterable[Span], fmt: str = FORMAT_S,
           types: Sequence[str] | None = None) -> str:
    """Rewrite ``words`` with markers around ``spans``. Format P writes one line per type in
    ``types`` (default: the spans' types in canonical order); spans the format cannot carry
    (see ``encodable``) are left out."""
    spans = [Span(*s) for s in spans]
    kept, _ = encodable(spans, fmt)
    if fmt == FORMAT_S:
        return " ".join(_units_with_markers(words, kept, typed=True))
    if fmt != FORMAT_P:
        raise ValueError(f"unknown tag format {fmt!r}")
    if types is None:
        present = {s.type for s in kept}
        types = [t for t in TYPE_ORDER if t in present] + sorted(present - set(TYPE_ORDER))
    lines = []
    for t in types:
        units = _units_with_markers(words, [s for s in kept if s.type == t], typed=False)
        lines.append(t + P_SEP + " ".join(units))
    return "\n".join(lines)


# --- decoding ----------------------------------------------------------------------------------
def _decode_units(words: Sequence[str], units: Sequence[str], diag: Diagnostics,
                  line_type: str | None, known: set[str] | None) -> list[Span]:
    """Align units to words; collect spans. Never raises."""
    spans: list[Span] = []
    stack: list[tuple[str | None, int]] = []
    i = 0
    n = len(words)
    window = 8
    for u in units:
        if not u:
            continue
        if u == CLOSE:
            if not stack:
                diag.note("unbalanced", f"closing marker with nothing open before word {i}")
                continue
            t, start = stack.pop()
            if t is None:
                continue  # an opener with an unknown type: drop the span silently (noted at open)
            if i <= start:
                diag.note("empty_spans", f"empty {t} span at word {i}")
                continue
            spans.append(Span(start, i, t))
            continue
        if u.startswith(OPEN):
            t = u[len(OPEN):] if line_type is None else (line_type if u == OPEN else None)
            if line_type is not None and u != OPEN:
                diag.note("unknown_units", f"typed marker {u!r} in a format P line")
            elif line_type is None and (not t or (known is not None and t not in known)):
                diag.note("unknown_types", f"unknown entity type {t!r}")
                t = None
            stack.append((t, i))
            continue
        w = unescape_word(u)
        if i < n and words[i] == w:
            i += 1
            continue
        # resynchronise: the model skipped words, or invented one
        ahead = next((k for k in range(i + 1, min(n, i + 1 + window)) if words[k] == w), None)
        if ahead is not None:
            diag.note("skipped_words", f"{ahead - i} word(s) missing before {w!r}")
            i = ahead + 1
        else:
            diag.note("unknown_units", f"word {w!r} not in the input at {i}")
    if i < n:
        diag.note("skipped_words", f"output ended {n - i} word(s) early")
    for t, start in stack:
        if t is None:
            continue
        diag.note("unbalanced", f"{t} span opened at word {start} never closed")
    return spans


def decode(words: Sequence[str], output: str, fmt: str = FORMAT_S,
           types: Iterable[str] | None = None) -> tuple[list[Span], Diagnostics]:
    """Parse a model output back into word spans. Total: never raises on any string.
    ``types`` (optional) is the set of types to accept; others are dropped and reported."""
    diag = Diagnostics()
    known = set(types) if types is not None else None
    try:
        if not isinstance(output, str):
            output = "" if output is None else str(output)
        if fmt == FORMAT_S:
            spans = _decode_units(words, output.split(), diag, None, known)
        elif fmt == FORMAT_P:
            spans = []
            for line in output.splitlines():
                if not line.strip():
                    continue
                head, sep, body = line.partition(":")
                head = head.strip()
                if not sep or not head or " " in head:
                    diag.note("bad_lines", f"line without a 'Type:' prefix: {line[:40]!r}")
                    continue
                if known is not None and head not in known:
                    diag.note("unknown_types", f"unknown entity type {head!r}")
                    continue
                spans.extend(_decode_units(words, body.split(), diag, head, known))
        else:
            diag.note("bad_lines", f"unknown tag format {fmt!r}")
            spans = []
    except Exception as exc:  # decode must be total; this is a bug guard, not a code path
        diag.note("bad_lines", f"decoder error: {type(exc).__name__}")
        spans = []
    # valid, unique, in nesting order
    n = len(words)
    clean = [s for s in spans if 0 <= s.start < s.end <= n]
    return _nest_order(clean), diag
