"""The one data model of biotag: a document's text plus entities with character offsets.

Offsets are Python string (code point) offsets, ``end`` exclusive, and ``entity.text ==
doc.text[entity.start:entity.end]`` always holds for entities attached to a document.
Nested and overlapping entities are first-class: a document simply holds a list of spans.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

SCHEMA_KEYS = ("id", "text", "entities", "lang")

# An entity's assertion status: the patient has it now (present), it is denied or ruled out
# (negated), uncertain or hypothetical (possible), in the patient's past (historical), or it
# concerns someone else, usually a relative (family). Files leave "present" out.
ASSERTIONS = ("present", "negated", "possible", "historical", "family")
PRESENT = "present"


@dataclass(frozen=True, order=True)
class Entity:
    """A typed span of a document's text."""

    start: int
    end: int
    type: str
    text: str = field(default="", compare=False)
    score: float | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False)
    meta: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    assertion: str = field(default=PRESENT, compare=False)

    def __post_init__(self):
        if not isinstance(self.start, int) or not isinstance(self.end, int):
            raise TypeError("entity offsets must be integers")
        if self.start < 0 or self.end <= self.start:
            raise ValueError(f"invalid entity span [{self.start}, {self.end})")
        if not self.type:
            raise ValueError("entity type must not be empty")
        if self.assertion not in ASSERTIONS:
            raise ValueError(f"unknown assertion {self.assertion!r} (expected one of "
                             f"{', '.join(ASSERTIONS)})")

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)

    @property
    def key(self) -> tuple[int, int, str]:
        """What strict evaluation compares: (start, end, type)."""
        return (self.start, self.end, self.type)

    def __len__(self) -> int:
        return self.end - self.start

    def contains(self, other: "Entity") -> bool:
        """True when ``other`` lies inside this span and the spans differ."""
        return self.start <= other.start and other.end <= self.end and self.span != other.span

    def overlaps(self, other: "Entity") -> bool:
        return self.start < other.end and other.start < self.end

    def crosses(self, other: "Entity") -> bool:
        """Overlapping, but neither contains the other."""
        return (self.overlaps(other) and not self.contains(other) and not other.contains(self)
                and self.span != other.span)

    def with_(self, **changes) -> "Entity":
        return replace(self, **changes)

    def to_json(self) -> dict:
        d = {"start": self.start, "end": self.end, "type": self.type, "text": self.text,
             "score": self.score}
        if self.source is not None:
            d["source"] = self.source
        if self.assertion != PRESENT:
            d["assertion"] = self.assertion
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Entity":
        score = d.get("score")
        return cls(int(d["start"]), int(d["end"]), str(d["type"]), str(d.get("text", "")),
                   None if score is None else float(score), d.get("source"), dict(d.get("meta") or {}),
                   d.get("assertion") or PRESENT)


@dataclass(frozen=True)
class Segment:
    """A sentence or segment of a document, as an offset span."""

    start: int
    end: int


@dataclass
class Document:
    """A text and its entities. ``lang`` is an ISO 639-1 code ("en", "zh", ...)."""

    id: str
    text: str
    entities: list[Entity] = field(default_factory=list)
    lang: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self):
        self.entities = [self._check(e) for e in self.entities]

    def _check(self, e: Entity) -> Entity:
        if e.end > len(self.text):
            raise ValueError(f"entity [{e.start}, {e.end}) lies outside the text of document "
                             f"{self.id!r} (length {len(self.text)})")
        real = self.text[e.start:e.end]
        if e.text != real:
            if e.text:
                raise ValueError(f"entity text {e.text!r} does not match the document text {real!r} "
                                 f"at [{e.start}, {e.end}) in document {self.id!r}")
            e = replace(e, text=real)
        return e

    def add(self, start: int, end: int, type: str, **kw) -> Entity:
        """Add an entity by offsets (its text is filled in) and return it."""
        e = self._check(Entity(start, end, type, self.text[start:end], **kw))
        self.entities.append(e)
        return e

    def add_entity(self, e: Entity) -> Entity:
        e = self._check(e)
        self.entities.append(e)
        return e

    def sorted_entities(self) -> list[Entity]:
        """Entities by start, longer first, then type: outer before inner."""
        return sorted(self.entities, key=lambda e: (e.start, -e.end, e.type))

    def nested_pairs(self) -> list[tuple[Entity, Entity]]:
        """(outer, inner) pairs whose spans differ and one contains the other."""
        es = self.sorted_entities()
        out = []
        for i, a in enumerate(es):
            for b in es[i + 1:]:
                if b.start >= a.end:
                    break
                if a.contains(b):
                    out.append((a, b))
                elif b.contains(a):
                    out.append((b, a))
        return out

    def crossing_pairs(self) -> list[tuple[Entity, Entity]]:
        es = self.sorted_entities()
        out = []
        for i, a in enumerate(es):
            for b in es[i + 1:]:
                if b.start >= a.end:
                    break
                if a.crosses(b):
                    out.append((a, b))
        return out

    def copy(self, entities: Iterable[Entity] | None = None) -> "Document":
        return Document(self.id, self.text, list(self.entities if entities is None else entities),
                        self.lang, dict(self.meta), list(self.segments))

    # -- canonical JSONL -------------------------------------------------------------------
    def to_json(self) -> dict:
        d = {"id": self.id, "text": self.text,
             "entities": [e.to_json() for e in self.sorted_entities()], "lang": self.lang}
        if self.meta:
            d["meta"] = self.meta
        return d

    def to_jsonl_line(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)

    @classmethod
    def from_json(cls, d: dict) -> "Document":
        if not isinstance(d, dict):
            raise ValueError("a document must be a JSON object")
        for k in ("id", "text"):
            if k not in d:
                raise ValueError(f"missing key {k!r}")
        if not isinstance(d["text"], str):
            raise ValueError("'text' must be a string")
        ents = d.get("entities") or []
        if not isinstance(ents, list):
            raise ValueError("'entities' must be a list")
        return cls(str(d["id"]), d["text"], [Entity.from_json(e) for e in ents], d.get("lang"),
                   dict(d.get("meta") or {}))

    def __iter__(self) -> Iterator[Entity]:
        return iter(self.entities)
