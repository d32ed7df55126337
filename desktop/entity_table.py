"""The entity table (type, text, start, end, score, source, review, assertion), with sorting and
a filter row (text box, type, assertion), and the legend: one checkable row per type with its
colour and count. Negated entities are struck through, possible ones in italics."""
from __future__ import annotations

from PySide6.QtCore import (QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex,
                            QPoint, QRect, QSize, QSortFilterProxyModel, Qt, Signal)
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QHeaderView,
                               QLayout, QLineEdit, QTableView, QVBoxLayout, QWidget)

from biotag.runtime.document import ASSERTIONS, Entity
from biotag.runtime.labels import CANONICAL_TYPES

from .review import review_of

COLUMNS = ("Type", "Text", "Start", "End", "Score", "Source", "Review", "Assertion")
ASSERTION_COLORS = {"negated": "#a02c2c", "possible": "#7a5c00", "historical": "#3d5a80",
                    "family": "#5e3d80"}
ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2


def swatch(color: str, w: int = 14, h: int = 10) -> QIcon:
    pm = QPixmap(w, h)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    c = QColor(color)
    p.setPen(c.darker(150))
    p.setBrush(c)
    p.drawRect(0, 0, w - 1, h - 1)
    p.end()
    return QIcon(pm)


class EntityTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[int, Entity]] = []
        self._colors: dict[str, str] = {}
        self._icons: dict[str, QIcon] = {}

    def set_items(self, items: list[tuple[int, Entity]], colors: dict[str, str]) -> None:
        items = list(items)
        if colors != self._colors:
            self._colors = dict(colors)
            self._icons = {}
        if [i for i, _ in items] == [i for i, _ in self._rows] and items:
            # same entities (a review edit): update in place, keeping scroll position and sorting
            changed = [r for r, (a, b) in enumerate(zip(self._rows, items)) if a[1] is not b[1]]
            self._rows = items
            if changed:
                self.dataChanged.emit(self.index(min(changed), 0),
                                      self.index(max(changed), len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self._rows = items
        self.endResetModel()

    def items(self) -> list[tuple[int, Entity]]:
        return list(self._rows)

    def row_of(self, eid: int) -> int:
        for r, (i, _) in enumerate(self._rows):
            if i == eid:
                return r
        return -1

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        eid, e = self._rows[index.row()]
        col = index.column()
        if role == ID_ROLE:
            return eid
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return e.type
            if col == 1:
                t = e.text.replace("\n", " ⏎ ")
                return t if len(t) <= 120 else t[:120] + "…"
            if col == 2:
                return e.start
            if col == 3:
                return e.end
            if col == 4:
                return "" if e.score is None else f"{e.score:.2f}"
            if col == 5:
                return e.source or ""
            if col == 6:
                return review_of(e)
            if col == 7:
                return e.assertion
        if role == SORT_ROLE:
            if col == 0:
                return e.type.lower()
            if col == 1:
                return e.text.lower()
            if col == 2:
                return e.start
            if col == 3:
                return e.end
            if col == 4:
                return -1.0 if e.score is None else e.score
            if col == 5:
                return e.source or ""
            if col == 6:
                return review_of(e)
            if col == 7:
                return ASSERTIONS.index(e.assertion)
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            c = self._colors.get(e.type, "#999999")
            if c not in self._icons:
                self._icons[c] = swatch(c)
            return self._icons[c]
        if role == Qt.ItemDataRole.ToolTipRole and col == 1:
            return e.text
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and review_of(e) == "rejected":
            return QBrush(QColor("#8a8a8a"))
        if role == Qt.ItemDataRole.ForegroundRole and e.assertion in ASSERTION_COLORS and col in (1, 7):
            return QBrush(QColor(ASSERTION_COLORS[e.assertion]))
        if role == Qt.ItemDataRole.FontRole and (review_of(e) == "rejected"
                                                 or e.assertion in ("negated", "possible")):
            from PySide6.QtGui import QFont

            f = QFont()
            if review_of(e) == "rejected" or (e.assertion == "negated" and col == 1):
                f.setStrikeOut(True)
            if e.assertion == "possible":
                f.setItalic(True)
            return f
        return None


class EntityFilter(QSortFilterProxyModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.text = ""
        self.type = ""
        self.assertion = ""
        self.setSortRole(SORT_ROLE)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_filter(self, text: str | None = None, typ: str | None = None,
                   assertion: str | None = None) -> None:
        new = (self.text if text is None else text.strip().lower(), self.type if typ is None else typ,
               self.assertion if assertion is None else assertion)
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10
            self.beginFilterChange()
            self.text, self.type, self.assertion = new
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.text, self.type, self.assertion = new
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row, parent):
        m = self.sourceModel()
        _, e = m._rows[row]
        if self.type and e.type != self.type:
            return False
        if self.assertion and e.assertion != self.assertion:
            return False
        if self.text:
            hay = f"{e.text}\n{e.type}\n{e.source or ''}\n{review_of(e)}\n{e.assertion}".lower()
            return self.text in hay
        return True


class EntityTable(QWidget):
    """Filter row + sortable table. ``selectionChangedIds`` lists the selected entity ids."""

    selectionChangedIds = Signal(list)
    activated = Signal(int)     # a row clicked or Enter: jump to the entity

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = EntityTableModel(self)
        self.proxy = EntityFilter(self)
        self.proxy.setSourceModel(self.model)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter entities (text, type, source, review, assertion)…")
        self.search.setClearButtonEnabled(True)
        self.type_box = QComboBox()
        self.type_box.addItem("All types", "")
        self.assertion_box = QComboBox()
        self.assertion_box.setToolTip("Show only entities with this assertion status")
        self.assertion_box.addItem("All assertions", "")
        for a in ASSERTIONS:
            self.assertion_box.addItem(a, a)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(2, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        h = self.view.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(False)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col, w in ((0, 96), (2, 46), (3, 46), (4, 46), (5, 64), (6, 70), (7, 76)):
            self.view.setColumnWidth(col, w)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.search, 1)
        top.addWidget(self.type_box)
        top.addWidget(self.assertion_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        self.search.textChanged.connect(lambda t: self.proxy.set_filter(text=t))
        self.type_box.currentIndexChanged.connect(
            lambda _: self.proxy.set_filter(typ=self.type_box.currentData() or ""))
        self.assertion_box.currentIndexChanged.connect(
            lambda _: self.proxy.set_filter(assertion=self.assertion_box.currentData() or ""))
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.view.clicked.connect(self._on_clicked)
        self.view.activated.connect(self._on_clicked)
        self._quiet = False

    def set_items(self, items: list[tuple[int, Entity]], colors: dict[str, str],
                  selected: list[int] | tuple = ()) -> None:
        self._quiet = True
        bar = self.view.verticalScrollBar()
        pos = bar.value()
        try:
            self.model.set_items(items, colors)
            bar.setValue(pos)
            types = sorted({e.type for _, e in items})
            cur = self.type_box.currentData() or ""
            if [self.type_box.itemData(k) for k in range(1, self.type_box.count())] != types:
                self.type_box.blockSignals(True)
                self.type_box.clear()
                self.type_box.addItem("All types", "")
                for t in types:
                    self.type_box.addItem(swatch(colors.get(t, "#999999")), t, t)
                k = self.type_box.findData(cur)
                self.type_box.setCurrentIndex(max(0, k))
                self.type_box.blockSignals(False)
                self.proxy.set_filter(typ=self.type_box.currentData() or "")
            self.select_ids(selected, scroll=False)
        finally:
            self._quiet = False

    def row_ids(self) -> list[int]:
        """Entity ids in the table's current (sorted, filtered) order."""
        return [self.proxy.index(r, 0).data(ID_ROLE) for r in range(self.proxy.rowCount())]

    def selected_ids(self) -> list[int]:
        rows = self.view.selectionModel().selectedRows()
        return [r.data(ID_ROLE) for r in sorted(rows, key=lambda r: r.row())]

    def select_ids(self, ids, scroll: bool = True) -> None:
        sel = QItemSelection()
        first = None
        for eid in ids:
            r = self.model.row_of(eid)
            if r < 0:
                continue
            pi = self.proxy.mapFromSource(self.model.index(r, 0))
            if not pi.isValid():
                continue
            first = first or pi
            sel.select(pi, self.proxy.index(pi.row(), len(COLUMNS) - 1))
        was = self._quiet
        self._quiet = True
        try:
            self.view.selectionModel().select(
                sel, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            if first is not None:
                self.view.selectionModel().setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
                if scroll:
                    self.view.scrollTo(first)
        finally:
            self._quiet = was

    def _on_selection(self, *_):
        if not self._quiet:
            self.selectionChangedIds.emit(self.selected_ids())

    def _on_clicked(self, index):
        eid = index.data(ID_ROLE)
        if eid is not None:
            self.activated.emit(eid)


class FlowLayout(QLayout):
    """Lays widgets out left to right, wrapping to new rows (height follows the width)."""

    def __init__(self, parent=None, spacing: int = 6):
        super().__init__(parent)
        self._items = []
        self._spacing = spacing
        self.setContentsMargins(4, 2, 4, 2)

    def addItem(self, item):
        self._items.append(item)

    def count(self):
        return len(self._items)

    def itemAt(self, i):
        return self._items[i] if 0 <= i < len(self._items) else None

    def takeAt(self, i):
        return self._items.pop(i) if 0 <= i < len(self._items) else None

    def expandingDirections(self):
        return Qt.Orientation(0)

    def hasHeightForWidth(self):
        return True

    def heightForWidth(self, width):
        return self._do_layout(QRect(0, 0, width, 0), True)

    def setGeometry(self, rect):
        super().setGeometry(rect)
        self._do_layout(rect, False)

    def sizeHint(self):
        return self.minimumSize()

    def minimumSize(self):
        size = QSize()
        for it in self._items:
            size = size.expandedTo(it.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _do_layout(self, rect, test_only):
        m = self.contentsMargins()
        r = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line_h = r.x(), r.y(), 0
        for it in self._items:
            if it.widget() is not None and it.widget().isHidden():
                continue
            hint = it.sizeHint()
            nx = x + hint.width() + self._spacing
            if nx - self._spacing > r.right() and line_h > 0:
                x, y = r.x(), y + line_h + 2
                nx = x + hint.width() + self._spacing
                line_h = 0
            if not test_only:
                it.setGeometry(QRect(QPoint(x, y), hint))
            x = nx
            line_h = max(line_h, hint.height())
        return y + line_h - rect.y() + m.bottom()


class Legend(QWidget):
    """Per-type toggles with the type's colour, visible count and definition."""

    toggled = Signal(str, bool)     # type, shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self.flow = FlowLayout(self)
        self.boxes: dict[str, QCheckBox] = {}

    def set_types(self, counts: dict[str, int], colors: dict[str, str], hidden: set[str]) -> None:
        order = sorted(counts, key=lambda t: (list(colors).index(t) if t in colors else 999, t))
        for t in order:
            if t not in self.boxes:
                b = QCheckBox()
                b.setToolTip(f"{t}: {CANONICAL_TYPES.get(t, 'a type from the loaded document')}.\n"
                             "Untick to hide this type in the view, the table and exports.")
                b.toggled.connect(lambda on, t=t: self.toggled.emit(t, on))
                self.flow.addWidget(b)
                self.boxes[t] = b
        rank = {t: k for k, t in enumerate(order)}
        self.flow._items.sort(key=lambda it: rank.get(self._type_of(it.widget()), 10_000))
        for t, b in self.boxes.items():
            if t not in rank:
                b.hide()
                continue
            b.blockSignals(True)
            b.setText(f"{t} ({counts[t]})")
            b.setIcon(swatch(colors.get(t, "#999999"), 16, 12))
            b.setChecked(t not in hidden)
            b.blockSignals(False)
            b.show()
        self._fit()

    def _type_of(self, w) -> str:
        for t, b in self.boxes.items():
            if b is w:
                return t
        return ""

    def _fit(self) -> None:
        self.flow.invalidate()
        h = self.flow.heightForWidth(max(60, self.width())) if any(
            not b.isHidden() for b in self.boxes.values()) else 24
        h = max(24, min(160, h))
        if h != self.height() or h != self.minimumHeight():
            self.setFixedHeight(h)
            p = self.parentWidget()
            if p is not None and p.layout() is not None:
                p.layout().activate()
        self.flow.setGeometry(self.rect())
        self.update()

    def resizeEvent(self, e):
        super().resizeEvent(e)
        if e.oldSize().width() != e.size().width():
            self._fit()

    def item_for(self, typ: str) -> QCheckBox | None:
        return self.boxes.get(typ)
