"""Assertion status of entities: present, negated, possible, historical or family.

A ConText-style rule engine (trigger terms with a category, a direction and a scope), English and
Chinese. The trigger lists are data files (``assertion_triggers/*.tsv`` in this package); a
hospital adds its own with files of the same form, passed to ``load_rules`` or named in
``$BIOTAG_ASSERTION_TRIGGERS`` (paths separated by ``os.pathsep``).

Trigger file lines (``#`` starts a comment; columns separated by tabs)::

    phrase<TAB>category<TAB>direction[<TAB>max_words]

* category: ``negated``, ``possible``, ``historical``, ``family``; ``pseudo`` (a phrase that
  contains a trigger but is none, e.g. "no increase", "not only", "无明显诱因": it only hides
  the shorter triggers inside it); ``terminate`` (ends the scopes it meets, e.g. "but", "但");
  ``exception`` (a phrase that sets what follows apart from the rest of its clause, e.g. "other
  than", "except": it ends the scopes it meets, and what follows it is ``negated`` when the
  clause holds no negation, "malignancy other than skin cancer", and keeps its own status when
  it does, "no complaints other than headache").
* direction: ``forward`` (the scope follows the trigger), ``backward`` (it precedes it) or
  ``both``; ``-`` for pseudo lines. A terminate line with ``forward`` ends only forward scopes
  (e.g. "was", "during"), with ``backward`` only backward ones; ``-`` or ``both`` ends both.
* max_words: optional, the most words the scope reaches (default: to the end of the clause).

Matching ignores case and the commas between a phrase's words ("unremarkable except" matches
"unremarkable, except"); a phrase that begins or ends with a letter or digit matches only at word
boundaries, so "no" never matches inside "nodule" (Chinese phrases match anywhere). Of the
phrases that start at the same place the longest wins, so a pseudo trigger or a longer trigger
("cannot rule out", "不能排除") takes precedence over the triggers inside it (a phrase that
starts inside an earlier match is not matched). A later line for the same phrase replaces an
earlier one, so a hospital file can also redefine or neutralise (``pseudo``) a built-in trigger.

Scopes: a clause ends at a sentence end (``. ! ? ; 。！？；`` or a line break) and, in Chinese,
at a full-width comma ``，``. Inside a clause a scope also ends at a ``terminate`` or
``exception`` phrase and at the next trigger of the same category. An entity takes the category
of every trigger whose scope holds its start (entities that overlap the trigger itself are not in
its scope); when several apply, ``family`` > ``negated`` > ``possible`` > ``historical``.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from .document import ASSERTIONS, PRESENT, Document, Entity
from .errors import FormatError
from .textio import read_text

TRIGGER_DIR = Path(__file__).resolve().parent / "assertion_triggers"
ENV = "BIOTAG_ASSERTION_TRIGGERS"
CATEGORIES = ("negated", "possible", "historical", "family", "exception", "pseudo", "terminate")
DIRECTIONS = ("forward", "backward", "both")
# which category wins when an entity lies in the scope of several triggers
PRIORITY = ("family", "negated", "possible", "historical")
CONTEXT = 2000   # characters read on each side of the spans (a longer clause is cut there)

_CLAUSE_END = re.compile(r"[.!?](?=\s|$)|[;。！？；\r\n]")
_CLAUSE_END_ZH = re.compile(r"，")
_WORD = re.compile(r"\w+")
_COMMA = re.compile(r"(?<=\S)\s*,\s+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Trigger:
    phrase: str
    category: str
    direction: str = "-"
    max_words: int | None = None
    source: str = ""

    @property
    def modifies(self) -> bool:
        return self.category in PRIORITY or self.category == "exception"


@dataclass(frozen=True)
class Cue:
    """One trigger found in a text: its span and its rule."""

    start: int
    end: int
    trigger: Trigger


def builtin_files() -> list[Path]:
    return sorted(TRIGGER_DIR.glob("*.tsv"))


def env_files() -> list[Path]:
    raw = os.environ.get(ENV, "")
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def parse_triggers(text: str, where: str = "<triggers>") -> list[Trigger]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) < 2 or not cols[0]:
            raise FormatError("expected 'phrase<TAB>category<TAB>direction[<TAB>max_words]'",
                              where, lineno)
        phrase, category = " ".join(cols[0].split()), cols[1].lower()
        direction = (cols[2].lower() if len(cols) > 2 and cols[2] else "-")
        if category not in CATEGORIES:
            raise FormatError(f"unknown category {cols[1]!r} (expected one of "
                              f"{', '.join(CATEGORIES)})", where, lineno)
        if category == "pseudo" or (category == "terminate" and direction == "-"):
            direction = "-" if category == "pseudo" else "both"
        else:
            if direction == "bidirectional":
                direction = "both"
            if direction not in DIRECTIONS:
                raise FormatError(f"{phrase!r}: unknown direction {direction!r} (expected one of "
                                  f"{', '.join(DIRECTIONS)})", where, lineno)
        max_words = None
        if len(cols) > 3 and cols[3]:
            if not cols[3].isdigit() or int(cols[3]) < 1:
                raise FormatError(f"{phrase!r}: max_words must be a positive integer, got "
                                  f"{cols[3]!r}", where, lineno)
            max_words = int(cols[3])
        out.append(Trigger(phrase, category, direction, max_words, str(where)))
    return out


def _phrase_pattern(phrase: str) -> str:
    body = r"(?:\s*,)?\s+".join(re.escape(w) for w in phrase.split(" "))   # "normal, except"
    if re.match(r"\w", phrase[0]) and not _CJK.match(phrase[0]):
        body = r"(?<!\w)" + body
    if re.match(r"\w", phrase[-1]) and not _CJK.match(phrase[-1]):
        body = body + r"(?!\w)"
    return body


class Rules:
    """A set of triggers, compiled into one pattern (longest phrase first)."""

    def __init__(self, triggers: Iterable[Trigger], version: str = ""):
        by_phrase: dict[str, Trigger] = {}
        for t in triggers:
            by_phrase[t.phrase.casefold()] = t   # a later line for the same phrase wins
        self.triggers = by_phrase
        self.version = version
        phrases = sorted(by_phrase, key=lambda p: (-len(p), p))
        self.pattern = (re.compile("|".join(_phrase_pattern(p) for p in phrases), re.IGNORECASE)
                        if phrases else None)

    def __len__(self) -> int:
        return len(self.triggers)

    def lookup(self, matched: str) -> Trigger:
        key = " ".join(matched.split()).casefold()
        return self.triggers[key] if key in self.triggers else self.triggers[_COMMA.sub(" ", key)]

    def cues(self, text: str, start: int = 0, end: int | None = None) -> list[Cue]:
        if self.pattern is None:
            return []
        end = len(text) if end is None else end
        return [Cue(m.start(), m.end(), self.lookup(m.group()))
                for m in self.pattern.finditer(text, start, end)]


def files_version(paths: Sequence[Path]) -> str:
    """A short hash of the trigger files' names and contents (what a bundle report shows)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode("utf-8") + b"\0" + Path(p).read_bytes() + b"\0")
    return h.hexdigest()[:12]


def load_rules(extra: Sequence[str | os.PathLike] | None = None, builtin: bool = True) -> Rules:
    """The built-in triggers, then those of ``$BIOTAG_ASSERTION_TRIGGERS``, then ``extra``."""
    paths = (builtin_files() if builtin else []) + env_files() + [Path(p) for p in extra or []]
    triggers: list[Trigger] = []
    for p in paths:
        triggers.extend(parse_triggers(read_text(p, allow_empty=True), str(p)))
    return Rules(triggers, files_version(paths))


@lru_cache(maxsize=1)
def _default_rules(env: str) -> Rules:
    return load_rules()


def default_rules() -> Rules:
    return _default_rules(os.environ.get(ENV, ""))


def rules_version() -> str:
    """The version of the trigger lists in use (built-in and ``$BIOTAG_ASSERTION_TRIGGERS``)."""
    return default_rules().version


# -- the algorithm --------------------------------------------------------------------------------
def clauses(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the clauses of ``text[start:end]``: scopes never cross their ends."""
    end = len(text) if end is None else end
    cuts = {start, end}
    for m in _CLAUSE_END.finditer(text, start, end):
        cuts.add(m.end())
    for m in _CLAUSE_END_ZH.finditer(text, start, end):
        cuts.add(m.end())
    pts = sorted(cuts)
    return [(a, b) for a, b in zip(pts, pts[1:]) if b > a]


def _limit_words(text: str, a: int, b: int, n: int | None, forward: bool) -> tuple[int, int]:
    if n is None:
        return a, b
    words = list(_WORD.finditer(text, a, b))
    if len(words) <= n:
        return a, b
    return (a, words[n - 1].end()) if forward else (words[-n].start(), b)


def _ends(other: Trigger, t: Trigger, direction: str) -> bool:
    """Whether ``other`` ends the ``direction`` scope of ``t``."""
    if other.category == "terminate":
        return other.direction in (direction, "both")
    if other.category == "exception":
        return True
    return other.category == t.category


def scopes(text: str, cues: list[Cue], a: int, b: int) -> list[tuple[Cue, int, int]]:
    """(cue, scope start, scope end) of every modifying cue of the clause [a, b)."""
    out = []
    for i, c in enumerate(cues):
        t = c.trigger
        if not t.modifies:
            continue
        if t.direction in ("forward", "both"):
            end = b
            for d in cues[i + 1:]:
                if _ends(d.trigger, t, "forward"):
                    end = d.start
                    break
            s, e = _limit_words(text, c.end, end, t.max_words, True)
            out.append((c, s, e))
        if t.direction in ("backward", "both"):
            start = a
            for d in reversed(cues[:i]):
                if _ends(d.trigger, t, "backward"):
                    start = d.end
                    break
            s, e = _limit_words(text, start, c.start, t.max_words, False)
            out.append((c, s, e))
    return out


def find(text: str, spans: Sequence[tuple[int, int]], rules: Rules | None = None
         ) -> list[tuple[str, Cue | None]]:
    """The assertion of each (start, end) span of ``text`` and the cue that decided it."""
    rules = rules or default_rules()
    found: list[tuple[str, Cue | None]] = [(PRESENT, None)] * len(spans)
    if not spans:
        return found
    rank = {c: k for k, c in enumerate(PRIORITY)}
    order = sorted(range(len(spans)), key=lambda k: spans[k])
    # only the text around the spans is read (a segment's entities need not scan the document)
    lo = max(0, min(s for s, _ in spans) - CONTEXT)
    hi = min(len(text), max(e for _, e in spans) + CONTEXT)
    i = 0
    for a, b in clauses(text, lo, hi):
        while i < len(order) and spans[order[i]][0] < a:
            i += 1
        j = i
        while j < len(order) and spans[order[j]][0] < b:
            j += 1
        members, i = order[i:j], j
        if not members:
            continue
        cues = rules.cues(text, a, b)
        if not any(c.trigger.modifies for c in cues):
            continue
        denies = any(c.trigger.category == "negated" for c in cues)
        for c, s, e in scopes(text, cues, a, b):
            cat = c.trigger.category
            if cat == "exception":
                if denies:           # "no complaints other than headache": headache as it is
                    continue
                cat = "negated"      # "malignancy other than skin cancer"
            for k in members:
                st, en = spans[k]
                if not (s <= st < e) or (st < c.end and c.start < en):
                    continue
                cur = found[k][0]
                if cur == PRESENT or rank[cat] < rank[cur]:
                    found[k] = (cat, c)
    return found


def assertions(text: str, spans: Sequence[tuple[int, int]], rules: Rules | None = None) -> list[str]:
    return [a for a, _ in find(text, spans, rules)]


def annotate(doc: Document, rules: Rules | None = None) -> Document:
    """Set the assertion of every entity of ``doc`` (in place) and return ``doc``."""
    if doc.entities:
        got = assertions(doc.text, [e.span for e in doc.entities], rules)
        doc.entities = [e if e.assertion == a else e.with_(assertion=a)
                        for e, a in zip(doc.entities, got)]
    return doc


def annotate_entities(text: str, entities: Sequence[Entity], rules: Rules | None = None
                      ) -> list[Entity]:
    got = assertions(text, [e.span for e in entities], rules)
    return [e if e.assertion == a else e.with_(assertion=a) for e, a in zip(entities, got)]


assert set(PRIORITY) <= set(ASSERTIONS)
