"""The document being reviewed: its text and entities, each with a stable id, and every review
edit as an undoable command (QUndoStack).

Review marks live in ``entity.meta["review"]``: ``"accepted"``, ``"rejected"``, ``"edited"``
(type, boundaries or assertion changed; the model's original span and type, and assertion
when it changed, are kept in ``meta["original"]``) or ``"added"`` (made by the user, ``source="manual"``). Exports drop rejected
entities and keep the marks on the others.
"""
from __future__ import annotations

import itertools
from typing import Iterable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from biotag.runtime.document import ASSERTIONS, Document, Entity
from biotag.runtime.words import segment_words

REVIEW_STATES = ("accepted", "rejected", "edited", "added")
_untitled = itertools.count(1)


def review_of(e: Entity) -> str:
    return str(e.meta.get("review", "") or "")


def next_untitled_id(prefix: str = "untitled") -> str:
    return f"{prefix}-{next(_untitled)}"


class ChangeEntities(QUndoCommand):
    """Replace entities by id: ``before``/``after`` map id -> Entity, or None for 'absent'."""

    def __init__(self, model: "DocumentModel", text: str, before: dict, after: dict):
        super().__init__(text)
        self.model, self.before, self.after = model, dict(before), dict(after)

    def redo(self):
        self.model._apply(self.after)

    def undo(self):
        self.model._apply(self.before)


class DocumentModel(QObject):
    """One open document. ``changed`` fires after any change of its entities."""

    changed = Signal()

    def __init__(self, doc: Document, path: str | None = None, tagged: bool = True, parent=None):
        super().__init__(parent)
        self.id = doc.id
        self.text = doc.text
        self.lang = doc.lang
        self.meta = dict(doc.meta)
        self.segments = list(doc.segments)
        self.path = path
        self.tagged = tagged        # False: a draft whose text may still be edited
        self.partial = False        # tagging was cancelled part-way
        self._ents: dict[int, Entity] = {}
        self._ids = itertools.count(1)
        self._words = None
        self.undo_stack = QUndoStack(self)
        for e in doc.entities:
            self._ents[next(self._ids)] = e

    # --- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ents)

    def entity(self, eid: int) -> Entity | None:
        return self._ents.get(eid)

    def items(self) -> list[tuple[int, Entity]]:
        """(id, entity) pairs, outer before inner, in text order."""
        return sorted(self._ents.items(), key=lambda kv: (kv[1].start, -kv[1].end, kv[1].type, kv[0]))

    def entities(self) -> list[Entity]:
        return [e for _, e in self.items()]

    def types(self) -> set[str]:
        return {e.type for e in self._ents.values()}

    def has_reviews(self) -> bool:
        return any(review_of(e) for e in self._ents.values())

    def words(self):
        if self._words is None:
            self._words = segment_words(self.text)
        return self._words

    # apply each model candidate's own tuned threshold (meta "threshold", set by the Tagger from the
    # bundle's per-instruction thresholds) on top of the slider; the main window toggles it
    model_thresholds: bool = True

    def passes(self, e: Entity, threshold: float = 0.0, hidden_types: Iterable[str] = (),
               show_rejected: bool = False) -> bool:
        """Whether an entity is shown/exported under a score threshold and type filter. Entities
        the user accepted, edited or added are kept whatever their score."""
        if e.type in hidden_types:
            return False
        rv = review_of(e)
        if rv == "rejected":
            return show_rejected
        if rv in ("accepted", "edited", "added"):
            return True
        if self.model_thresholds and e.score is not None:
            threshold = max(threshold, float((e.meta or {}).get("threshold") or 0.0))
        return e.score is None or e.score >= threshold - 1e-9

    def visible(self, threshold: float = 0.0, hidden_types: Iterable[str] = (),
                show_rejected: bool = False) -> list[tuple[int, Entity]]:
        hidden = set(hidden_types)
        return [(i, e) for i, e in self.items() if self.passes(e, threshold, hidden, show_rejected)]

    def to_document(self, threshold: float = 0.0, hidden_types: Iterable[str] = (),
                    include_rejected: bool = False) -> Document:
        """The document for export: reviewed, threshold-filtered, rejected removed."""
        ents = [e for _, e in self.visible(threshold, hidden_types, include_rejected)]
        meta = dict(self.meta)
        if self.partial:
            meta["partial"] = True
        return Document(self.id, self.text, ents, self.lang, meta, list(self.segments))

    # --- changes that are not review edits (tagging, loading) ------------------------------------
    def edit_draft(self, text: str) -> None:
        """The text of an untagged draft as the user types it."""
        self.text = text
        self._words = None

    def set_text(self, text: str) -> None:
        """Change the text of a draft (drops entities and undo history)."""
        self.text = text
        self._words = None
        self._ents.clear()
        self.segments = []
        self.undo_stack.clear()
        self.changed.emit()

    def clear_entities(self) -> None:
        self._ents.clear()
        self.segments = []
        self.partial = False
        self.undo_stack.clear()
        self.changed.emit()

    def add_model_entities(self, ents: Sequence[Entity]) -> list[int]:
        """Entities streamed from the tagger (not undoable)."""
        ids = []
        for e in ents:
            if e.end > len(self.text) or self.text[e.start:e.end] != e.text:
                continue  # the text changed under a running job: drop stale results
            i = next(self._ids)
            self._ents[i] = e
            ids.append(i)
        if ids:
            self.changed.emit()
        return ids

    def _apply(self, mapping: dict) -> None:
        for i, e in mapping.items():
            if e is None:
                self._ents.pop(i, None)
            else:
                self._ents[i] = e
        self.changed.emit()

    def _push(self, label: str, after: dict) -> None:
        after = {i: e for i, e in after.items() if self._ents.get(i) is not e}
        if not after:
            return
        before = {i: self._ents.get(i) for i in after}
        self.undo_stack.push(ChangeEntities(self, label, before, after))

    # --- review edits (undoable) -----------------------------------------------------------------
    def _edited(self, e: Entity, **changes) -> Entity:
        meta = dict(e.meta)
        if review_of(e) != "added":
            meta["review"] = "edited"
            meta.setdefault("original", {"start": e.start, "end": e.end, "type": e.type})
        if "start" in changes or "end" in changes:
            a, b = changes.get("start", e.start), changes.get("end", e.end)
            changes["text"] = self.text[a:b]
        return e.with_(meta=meta, **changes)

    def accept(self, ids: Iterable[int]) -> None:
        after = {}
        for i in ids:
            e = self._ents.get(i)
            if e is None or review_of(e) in ("accepted", "edited", "added"):
                continue
            after[i] = e.with_(meta={**e.meta, "review": "accepted"})
        self._push(f"Accept {len(after)} entit{'y' if len(after) == 1 else 'ies'}", after)

    def reject(self, ids: Iterable[int]) -> None:
        after = {}
        for i in ids:
            e = self._ents.get(i)
            if e is None or review_of(e) == "rejected":
                continue
            after[i] = e.with_(meta={**e.meta, "review": "rejected"})
        self._push(f"Reject {len(after)} entit{'y' if len(after) == 1 else 'ies'}", after)

    def clear_review(self, ids: Iterable[int]) -> None:
        """Back to unreviewed (only for accepted/rejected marks)."""
        after = {}
        for i in ids:
            e = self._ents.get(i)
            if e is not None and review_of(e) in ("accepted", "rejected"):
                meta = {k: v for k, v in e.meta.items() if k != "review"}
                after[i] = e.with_(meta=meta)
        self._push("Clear review mark", after)

    def set_type(self, ids: Iterable[int], typ: str) -> None:
        typ = typ.strip()
        if not typ:
            raise ValueError("an entity type must not be empty")
        after = {i: self._edited(self._ents[i], type=typ) for i in ids
                 if i in self._ents and self._ents[i].type != typ}
        self._push(f"Change type to {typ}", after)

    def set_assertion(self, ids: Iterable[int], assertion: str) -> None:
        """Give the entities another assertion status (present, negated, possible, ...)."""
        if assertion not in ASSERTIONS:
            raise ValueError(f"unknown assertion {assertion!r}")
        after = {}
        for i in ids:
            e = self._ents.get(i)
            if e is None or e.assertion == assertion:
                continue
            edited = self._edited(e, assertion=assertion)
            original = edited.meta.get("original")
            if isinstance(original, dict) and "assertion" not in original:
                edited.meta["original"] = {**original, "assertion": e.assertion}
            after[i] = edited
        self._push(f"Mark {assertion}", after)

    def set_span(self, eid: int, start: int, end: int) -> bool:
        e = self._ents.get(eid)
        if e is None or not (0 <= start < end <= len(self.text)) or (start, end) == e.span:
            return False
        self._push("Adjust boundaries", {eid: self._edited(e, start=start, end=end)})
        return True

    def move_boundary(self, eid: int, side: str, direction: int, unit: str = "word") -> bool:
        """Move the ``side`` ("start"/"end") boundary of an entity one word or character left
        (``direction`` -1) or right (+1). False when it cannot move (text edge, empty span)."""
        e = self._ents.get(eid)
        if e is None:
            return False
        span = moved_span(self.text, self.words(), e.start, e.end, side, direction, unit)
        if span is None:
            return False
        return self.set_span(eid, *span)

    def add(self, start: int, end: int, typ: str) -> int | None:
        """Add a manual entity (whitespace trimmed off the span). Returns its id."""
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        if start >= end or not typ.strip():
            return None
        for i, e in self._ents.items():  # the same entity already there: accept it instead
            if e.key == (start, end, typ):
                if review_of(e) != "added":
                    self.accept([i])
                return i
        eid = next(self._ids)
        e = Entity(start, end, typ.strip(), self.text[start:end], None, "manual", {"review": "added"})
        self._push(f"Add {typ}", {eid: e})
        return eid

    def delete(self, ids: Iterable[int]) -> None:
        after = {i: None for i in ids if i in self._ents}
        self._push(f"Delete {len(after)} entit{'y' if len(after) == 1 else 'ies'}", after)


def moved_span(text: str, words, start: int, end: int, side: str, direction: int,
               unit: str = "word") -> tuple[int, int] | None:
    """The span after moving one boundary by a word (``words`` from segment_words; each CJK
    character is a word) or a character. Boundaries never land on whitespace."""
    if side not in ("start", "end") or direction not in (-1, 1) or unit not in ("word", "char"):
        raise ValueError("side start|end, direction -1|+1, unit word|char")
    n = len(text)
    if unit == "word":
        if side == "start":
            if direction < 0:
                cand = [w.start for w in words if w.start < start]
                new = max(cand) if cand else None
            else:
                cand = [w.start for w in words if start < w.start < end]
                new = min(cand) if cand else None
            return None if new is None else (new, end)
        if direction > 0:
            cand = [w.end for w in words if w.end > end]
            new = min(cand) if cand else None
        else:
            cand = [w.end for w in words if start < w.end < end]
            new = max(cand) if cand else None
        return None if new is None else (start, new)
    # one character, skipping whitespace
    if side == "start":
        new = start + direction
        while 0 <= new < n and text[new].isspace():
            new += direction
        if new < 0 or new >= end:
            return None
        return (new, end)
    new = end + direction
    while 0 < new <= n and text[new - 1].isspace():
        new += direction
    if new > n or new <= start:
        return None
    return (start, new)
