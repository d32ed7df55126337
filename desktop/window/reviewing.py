"""The review controller: what is shown (threshold, types), selection, and review edits (accept,
reject, type, boundaries, add, delete).

A part of :class:`biotag.desktop.main_window.MainWindow` (which holds the state it uses)."""
from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QInputDialog, QMenu

from biotag.runtime.document import ASSERTIONS
from biotag.runtime.labels import CANONICAL_TYPES, TYPE_ORDER

from .. import export as exporting
from ..entity_table import swatch
from ..fonts import text_font
from ..review import DocumentModel, review_of


class ReviewPart:
    # ================================================================ view state
    def visible_items(self):
        m = self.current
        if m is None:
            return []
        return m.visible(self.threshold, self.hidden_types, self.show_rejected)

    def _on_model_changed(self, m):
        if m is self.current and self._alive():
            self.refresh()

    def refresh(self):
        m = self.current
        items = self.visible_items()
        self.colors = exporting.all_colors({e.type for mm in self.models for e in mm.entities()})
        self.selected_ids = [i for i in self.selected_ids if any(i == j for j, _ in items)]
        primary = self.selected_ids[0] if self.selected_ids else None
        self.view.set_entities(items, self.colors, primary)
        self.table.set_items(items, self.colors, self.selected_ids)
        counts: dict[str, int] = {}
        if m is not None:
            for _, e in m.visible(self.threshold, (), self.show_rejected):
                counts[e.type] = counts.get(e.type, 0) + 1
            for t in self.hidden_types:
                counts.setdefault(t, 0)
        self.legend.set_types(counts, self.colors, self.hidden_types)
        self._update_actions()

    def set_threshold(self, t: float):
        self.threshold = round(min(1.0, max(0.0, t)), 2)
        if round(self.slider.value()) != round(self.threshold * 100):
            self.slider.blockSignals(True)
            self.slider.setValue(round(self.threshold * 100))
            self.slider.blockSignals(False)
        self.settings.threshold = self.threshold
        self._update_slider_label()
        self.refresh()

    def set_model_thresholds(self, on: bool):
        DocumentModel.model_thresholds = bool(on)
        if self.model_thr_box.isChecked() != bool(on):
            self.model_thr_box.setChecked(bool(on))
        self.refresh()

    def _update_slider_label(self):
        self.slider_label.setText(f"≥ {self.threshold:.2f}")

    def _on_legend(self, typ: str, shown: bool):
        if shown:
            self.hidden_types.discard(typ)
        else:
            self.hidden_types.add(typ)
        self.refresh()

    def set_type_visible(self, typ: str, shown: bool):
        self._on_legend(typ, shown)

    def toggle_rejected(self):
        self.show_rejected = self.actions_by_name["show_rejected"].isChecked()
        self.settings.show_rejected = self.show_rejected
        self.refresh()

    def zoom(self, step: int):
        size = min(40, max(7, self.settings.font_size + step))
        self.settings.font_size = size
        self.view.setFont(text_font(size))
        self.refresh()

    def focus_filter(self):
        self.table.search.setFocus()
        self.table.search.selectAll()

    def _update_actions(self):
        m = self.current
        busy_doc = m is not None and m in self.jobs.values()
        has_sel = bool(self.selected_ids)
        ro = m is not None and m.tagged
        en = self.actions_by_name
        en["tag"].setEnabled(self.service.has_model and m is not None and not busy_doc and bool(m.text.strip()))
        en["cancel"].setEnabled(self.service.busy)
        for n in ("accept", "reject", "clear_review", "change_type", "delete", "start_left", "start_right",
                  "end_left", "end_right", "start_left_char", "start_right_char", "end_left_char", "end_right_char",
                  "toggle_negated", *(f"assert_{a}" for a in ASSERTIONS)):
            en[n].setEnabled(has_sel and ro)
        en["add"].setEnabled(ro and self.view.textCursor().hasSelection())
        en["edit_text"].setEnabled(ro and not busy_doc)
        en["batch"].setEnabled(True)

    # ================================================================ selection
    def _on_view_clicked(self, eid: int):
        self.selected_ids = [] if eid < 0 else [eid]
        self.table.select_ids(self.selected_ids)
        self._update_actions()

    def _on_table_selection(self, ids):
        self.selected_ids = list(ids)
        self.view.set_selected(ids[0] if ids else None, scroll=bool(ids))
        self._update_actions()

    def select(self, ids) -> None:
        """Select entities by id (view, table and actions follow)."""
        ids = [i for i in ids if i is not None]
        self.selected_ids = ids
        self.view.set_selected(ids[0] if ids else None)
        self.table.select_ids(ids)
        self._update_actions()

    def step(self, direction: int):
        order = [i for i, _ in self.visible_items()]
        if not order:
            return
        cur = self.selected_ids[0] if self.selected_ids else None
        if cur in order:
            k = (order.index(cur) + direction) % len(order)
        else:
            k = 0 if direction > 0 else len(order) - 1
        self.select([order[k]])

    # ================================================================ review
    def _targets(self) -> list[int]:
        m = self.current
        if m is None or not m.tagged:
            return []
        return [i for i in self.selected_ids if m.entity(i) is not None]

    def accept_selected(self):
        if self._targets():
            self.current.accept(self._targets())

    def reject_selected(self):
        if self._targets():
            self.current.reject(self._targets())

    def clear_review_selected(self):
        if self._targets():
            self.current.clear_review(self._targets())

    def set_assertion_selected(self, assertion: str):
        if self._targets():
            self.current.set_assertion(self._targets(), assertion)

    def toggle_negated_selected(self):
        ids = self._targets()
        if ids:
            neg = self.current.entity(ids[0]).assertion != "negated"
            self.current.set_assertion(ids, "negated" if neg else "present")

    def delete_selected(self):
        ids = self._targets()
        if ids:
            order = [i for i, _ in self.visible_items()]
            after = [i for i in order if i not in ids and order.index(i) > order.index(ids[0])] if ids[0] in order else []
            self.current.delete(ids)
            self.select(after[:1])

    def all_types(self) -> list[str]:
        extra = sorted({e.type for m in self.models for e in m.entities()} - set(TYPE_ORDER))
        return list(TYPE_ORDER) + extra

    def _type_menu(self, title: str, current: str | None = None) -> QMenu:
        menu = QMenu(title, self)
        types = self.all_types()
        first = [self.last_type] if self.last_type in types else []
        for t in first + [t for t in types if t not in first]:
            a = menu.addAction(swatch(self.colors.get(t, "#999999")), t)
            a.setData(t)
            a.setToolTip(CANONICAL_TYPES.get(t, ""))
            if t == current:
                a.setCheckable(True)
                a.setChecked(True)
            if t in first and len(types) > 1 and t == first[0]:
                menu.addSeparator()
        menu.addSeparator()
        other = menu.addAction("Other type…")
        other.setData("__other__")
        return menu

    def _ask_type(self, title: str, current: str | None = None, at: QPoint | None = None) -> str | None:
        if not self.interactive:
            return None
        menu = self._type_menu(title, current)
        if at is None:
            ids = self._targets()
            at = self.view.viewport().mapToGlobal(self.view.point_of(ids[0])) if ids else \
                self.view.viewport().mapToGlobal(self.view.cursorRect().bottomLeft())
        a = menu.exec(at)
        if a is None:
            return None
        t = a.data()
        if t == "__other__":
            t, ok = QInputDialog.getText(self, "Entity type", "Type name:")
            if not ok or not t.strip():
                return None
        return t.strip()

    def change_type(self, typ: str | None = None):
        ids = self._targets()
        if not ids:
            return
        if typ is None:
            typ = self._ask_type("Change type to", self.current.entity(ids[0]).type)
            if not typ:
                return
        self.last_type = typ
        self.current.set_type(ids, typ)

    def add_entity(self, typ: str | None = None, span: tuple[int, int] | None = None) -> int | None:
        m = self.current
        if m is None or not m.tagged:
            self.info("Tag the document (Ctrl+T) before adding entities.")
            return None
        span = span or self.view.selected_span()
        if span is None:
            self.info("Select the text of the new entity first.")
            return None
        if typ is None:
            typ = self._ask_type("Add entity as")
            if not typ:
                return None
        self.last_type = typ
        eid = m.add(span[0], span[1], typ)
        if eid is None:
            self.info("The selection holds only spaces.")
            return None
        c = self.view.textCursor()
        c.clearSelection()
        self.view.setTextCursor(c)
        self.select([eid])
        return eid

    def move_boundary(self, side: str, direction: int, unit: str):
        ids = self._targets()
        if not ids:
            return
        if not self.current.move_boundary(ids[0], side, direction, unit):
            self.info("That boundary cannot move further.")
        else:
            self.select([ids[0]])

    def _review_menu(self, at: QPoint, ids: list[int] | None = None):
        m = self.current
        menu = QMenu(self)
        if self.view.textCursor().hasSelection() and m is not None and m.tagged:
            sub = self._type_menu("Add selection as")
            menu.addMenu(sub)
            sub.triggered.connect(lambda a: self._add_from_menu(a))
        if ids:
            if len(ids) > 1:
                pick = menu.addMenu("Select")
                for i in ids:
                    e = m.entity(i)
                    a = pick.addAction(swatch(self.colors.get(e.type, "#999999")), f"{e.type}: “{e.text[:40]}”")
                    a.triggered.connect(lambda _=False, i=i: self.select([i]))
        if self._targets():
            e = m.entity(self._targets()[0])
            head = menu.addAction(f"{e.type}: “{e.text[:40]}”" + (f" ({review_of(e)})" if review_of(e) else ""))
            head.setEnabled(False)
            for n in ("accept", "reject", "clear_review", "change_type", "delete"):
                menu.addAction(self.actions_by_name[n])
            menu.addMenu(self.assertion_menu)
            menu.addMenu(self.boundary_menu)
        if not menu.isEmpty():
            menu.exec(at)

    def _add_from_menu(self, a):
        t = a.data()
        if t == "__other__":
            t, ok = QInputDialog.getText(self, "Entity type", "Type name:")
            if not ok:
                return
        self.add_entity(t)

    def _view_menu(self, ids, at):
        if ids and (not self.selected_ids or self.selected_ids[0] not in ids):
            self.select([ids[0]])
        self._review_menu(at, ids)
