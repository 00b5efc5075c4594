"""The surgeon's list of vertebral levels: one row per level, its left and right needle's
verdict, and the actions on levels and needles.

The panel is a thin view. It is given `LevelRow` values (built by the main window from the
anatomy, the plan and the check results) and emits intents (``*_requested``); it never edits
a plan, runs a check or decides which levels exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from planning.plan import DEFAULT_GAUGE, GAUGES, LEVEL_NAMES, Side, gauge, level_index
from planning.vocabulary import STATUS_COLORS, TEXT_ON_STATUS
from widgets.check_details import LABEL_GREY
from widgets.level_rows import (
    LevelRow,
    level_tag,
    level_tooltip,
    needle_cell_text,
    needle_tooltip,
    row_order,
    verdict_summary,
)
from widgets.levels_table import (
    CURRENT_ROLE,
    LEFT_COL,
    LEVEL_COL,
    LEVEL_ROLE,
    RIGHT_COL,
    TAG_COLOR_ROLE,
    TAG_ROLE,
    levels_table,
)

SIDE_OF_COLUMN = {LEFT_COL: Side.LEFT, RIGHT_COL: Side.RIGHT}
COLUMN_OF_SIDE = {side: col for col, side in SIDE_OF_COLUMN.items()}
UNCERTAIN_TEXT = "Level labels uncertain — check the count and shift if needed"
REGIONS = (("Cervical", "C"), ("Thoracic", "T"), ("Lumbar", "L"), ("Sacral", "S"))


class LevelsPanel(QWidget):
    """The vertebral levels of the CT and the plan, with their needles' verdicts.

    Clicking a level cell (or an empty needle cell) emits `level_selected`; clicking a needle
    emits `needle_selected` and outlines it, so that Remove acts on that needle. Ctrl/Shift
    clicks only extend the selection, for Propose and Remove over several levels.
    """

    level_selected = Signal(str)  # user clicked a row
    needle_selected = Signal(str, object)  # (level, Side) user clicked a Left or Right cell
    propose_requested = Signal(list, str)  # (levels cranial → caudal, gauge name)
    place_requested = Signal(str, object)  # (level, Side): user wants to click a new needle in
    remove_requested = Signal(str, object)  # (level, Side or None for both)
    add_level_requested = Signal(str)  # a level name chosen that is not in the list
    shift_labels_requested = Signal(int)  # −1 / +1: rename every detected level one up/down
    gauge_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[LevelRow] = []
        self._current_needle: tuple[str, Side] | None = None
        self._busy = False
        self._updating = False

        self.warning_label = QLabel(f"⚠  {UNCERTAIN_TEXT}")
        self.warning_label.setObjectName("levelsWarning")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(
            "QLabel { background-color: #5a3d00; color: #ffd27a; font-weight: bold;"
            " border: 1px solid #8a6000; border-radius: 4px; padding: 5px 8px; }"
        )
        self.warning_label.setToolTip(
            "No landmark (the sacrum, the last rib at T12, the first rib at T1) was seen,\n"
            "or the landmarks disagree: the reason is in the anatomy warnings.\n"
            "Count them on the sagittal view; if every name is off by one, use Shift ↑ / ↓."
        )
        self.warning_label.hide()

        self.table = levels_table()
        self.table.clicked.connect(self._on_clicked)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.summary_label = QLabel()
        self.summary_label.setObjectName("levelsSummary")
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet("QLabel { padding: 0 2px; }")

        self._build_buttons()
        self.busy_label = QLabel()
        self.busy_label.setObjectName("levelsBusy")
        self.busy_label.setWordWrap(True)
        self.busy_label.setStyleSheet(f"QLabel {{ color: {LABEL_GREY}; font-style: italic; }}")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # indeterminate: the controller owns the real progress
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setMaximumHeight(6)
        self.busy_label.hide()
        self.busy_bar.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(6)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary_label)
        layout.addLayout(self._row_layout(self.propose_button, self.gauge_combo))
        layout.addWidget(self.busy_bar)
        layout.addWidget(self.busy_label)
        layout.addLayout(
            self._row_layout(self.place_left_button, self.place_right_button, self.remove_button)
        )
        layout.addLayout(
            self._row_layout(self.shift_up_button, self.shift_down_button, self.add_level_button)
        )
        self._refresh()

    # ---- construction -----------------------------------------------------------------
    def _build_buttons(self) -> None:
        style = self.style()
        icon = style.standardIcon
        sp = QStyle.StandardPixmap

        self.propose_button = QPushButton(icon(sp.SP_MediaPlay), "Propose all")
        self.propose_button.setObjectName("proposeButton")
        self.propose_button.clicked.connect(self._on_propose)

        self.gauge_combo = QComboBox()
        self.gauge_combo.setObjectName("gaugeCombo")
        for name, g in GAUGES.items():
            self.gauge_combo.addItem(f"{name}  ·  {g.outer_diameter_mm:.2f} mm", name)
        self.gauge_combo.setToolTip(
            "Needle gauge for proposed needles (outer diameter: clearances are measured "
            "from the needle's surface)"
        )
        self.gauge_combo.setCurrentIndex(self.gauge_combo.findData(DEFAULT_GAUGE))
        self.gauge_combo.currentIndexChanged.connect(self._on_gauge_index)

        self.place_left_button = QPushButton("Place left")
        self.place_left_button.setObjectName("placeLeftButton")
        self.place_left_button.clicked.connect(lambda: self._on_place(Side.LEFT))
        self.place_right_button = QPushButton("Place right")
        self.place_right_button.setObjectName("placeRightButton")
        self.place_right_button.clicked.connect(lambda: self._on_place(Side.RIGHT))

        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("removeButton")
        self.remove_button.clicked.connect(self._on_remove)
        # the Delete key is the main window's (Edit ▸ Delete needle), which clicks this
        # button when no needle is selected: one shortcut, never an ambiguous pair

        self.shift_up_button = QPushButton(icon(sp.SP_ArrowUp), "Shift up")
        self.shift_up_button.setObjectName("shiftUpButton")
        self.shift_up_button.setToolTip(
            "Rename every detected level one level up (cranial): L2 → L1, L1 → T12.\n"
            "Use when the automatic count is one level too low."
        )
        self.shift_up_button.clicked.connect(lambda: self.shift_labels_requested.emit(-1))
        self.shift_down_button = QPushButton(icon(sp.SP_ArrowDown), "Shift down")
        self.shift_down_button.setObjectName("shiftDownButton")
        self.shift_down_button.setToolTip(
            "Rename every detected level one level down (caudal): L1 → L2, T12 → L1.\n"
            "Use when the automatic count is one level too high."
        )
        self.shift_down_button.clicked.connect(lambda: self.shift_labels_requested.emit(+1))

        self.add_level_menu = QMenu(self)
        self.add_level_menu.triggered.connect(self._on_add_level)
        self.add_level_button = QPushButton("Add level…")
        self.add_level_button.setObjectName("addLevelButton")
        self.add_level_button.setToolTip(
            "Add a level that was not found in the CT, to plan its needles by hand"
        )
        self.add_level_button.setMenu(self.add_level_menu)

        for button in (
            self.propose_button, self.place_left_button, self.place_right_button,
            self.remove_button, self.shift_up_button, self.shift_down_button,
            self.add_level_button,
        ):
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.setStyleSheet("QPushButton { min-width: 0; padding: 5px 6px; }")
        self.gauge_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    @staticmethod
    def _row_layout(*widgets: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        for w in widgets:
            row.addWidget(w, 1)
        return row

    # ---- public API -------------------------------------------------------------------
    def set_rows(self, rows: Sequence[LevelRow]) -> None:
        """Show these levels (fractured first, then cranial to caudal), keeping the
        selection and the picked needle wherever their level still exists."""
        names = [r.name for r in rows]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"level rows are duplicated: {', '.join(dupes)}")
        keep = set(self.selected_levels())
        current = self._current_level()
        self._rows = sorted(rows, key=row_order)
        by_name = {r.name: r for r in self._rows}
        if self._current_needle and not (
            self._current_needle[0] in by_name
            and by_name[self._current_needle[0]].has_needle(self._current_needle[1])
        ):
            self._current_needle = None

        self._updating = True
        try:
            self.table.clearSelection()
            self.table.setRowCount(len(self._rows))
            for i, row in enumerate(self._rows):
                self._fill_row(i, row)
            self._restore_selection(keep, current)
        finally:
            self._updating = False
        self._rebuild_add_menu()
        self._refresh()

    def rows(self) -> list[LevelRow]:
        """The rows on show, in their order (see `row_order`)."""
        return list(self._rows)

    def set_gauge(self, name: str) -> None:
        """Show ``name`` as the gauge (no `gauge_changed`: this is not the user's choice)."""
        canonical = gauge(name).name
        self.gauge_combo.blockSignals(True)
        try:
            self.gauge_combo.setCurrentIndex(self.gauge_combo.findData(canonical))
        finally:
            self.gauge_combo.blockSignals(False)
        self._refresh()

    def gauge(self) -> str:
        return str(self.gauge_combo.currentData())

    def selected_levels(self) -> list[str]:
        """Selected levels, cranial to caudal."""
        model = self.table.selectionModel()
        rows = (i.row() for i in model.selectedRows())
        names = {self._rows[r].name for r in rows if r < len(self._rows)}
        return sorted(names, key=level_index)

    def select_level(self, name: str) -> None:
        """Select one level (no signal). A valid level not in the list clears the selection;
        an invalid name raises `planning.plan.PlanError`."""
        self.select_needle(name, None)

    def select_levels(self, names: Sequence[str]) -> None:
        """Select these levels (no signal), e.g. the fractured ones for Propose."""
        rows = [i for i, r in enumerate(self._rows) if r.name in set(names)]
        self._updating = True
        try:
            self.table.clearSelection()
            if rows:
                self._select_rows(rows, rows[0])
        finally:
            self._updating = False
        self._refresh()

    def select_needle(self, level: str, side: Side | None) -> None:
        """Select a level and outline one of its needles, e.g. when it was picked in a view
        (no signal). ``side=None`` selects the level only."""
        level_index(level)  # raises PlanError for a name that is no level
        name = level.strip().upper()
        row = next((i for i, r in enumerate(self._rows) if r.name == name), None)
        self._updating = True
        try:
            self.table.clearSelection()
            needle = None
            if row is not None:
                self._select_rows([row], row)
                self.table.scrollTo(self.table.model().index(row, LEVEL_COL))
                if side is not None and self._rows[row].has_needle(side):
                    needle = (name, side)
            self._set_current_needle(needle)
        finally:
            self._updating = False
        self._refresh()

    def set_busy(self, busy: bool, text: str = "") -> None:
        """While a proposal runs: Propose is disabled and ``text`` says what is going on."""
        self._busy = busy
        self.busy_label.setText(text)
        self.busy_label.setVisible(busy and bool(text))
        self.busy_bar.setVisible(busy)
        self._refresh()

    def set_labels_uncertain(self, uncertain: bool, why: str = "") -> None:
        """Show or hide the warning that the level names may be off by one or more;
        ``why`` (the anatomy's warnings) is its tooltip."""
        self.warning_label.setVisible(uncertain)
        self.warning_label.setToolTip(why if uncertain else "")

    def labels_uncertain(self) -> bool:
        return not self.warning_label.isHidden()

    # ---- rows -------------------------------------------------------------------------
    def _fill_row(self, i: int, row: LevelRow) -> None:
        level_item = QTableWidgetItem(row.name)
        tag, tag_color = level_tag(row)
        level_item.setData(TAG_ROLE, tag)
        level_item.setData(TAG_COLOR_ROLE, tag_color)
        level_item.setToolTip(level_tooltip(row))
        if not row.detected:
            font = QFont()
            font.setItalic(True)
            level_item.setFont(font)
        self.table.setItem(i, LEVEL_COL, level_item)
        for col, side in SIDE_OF_COLUMN.items():
            item = QTableWidgetItem(needle_cell_text(row, side))
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(needle_tooltip(row, side))
            result = row.result(side)
            if row.has_needle(side):
                status = result.status if result is not None else None
                item.setBackground(QBrush(QColor(STATUS_COLORS[status])))
                item.setForeground(QBrush(QColor(TEXT_ON_STATUS)))
            item.setData(CURRENT_ROLE, self._current_needle == (row.name, side))
            self.table.setItem(i, col, item)
        for c in range(3):
            cell = self.table.item(i, c)
            if cell is not None:
                cell.setData(LEVEL_ROLE, row.name)

    def _restore_selection(self, keep: set[str], current: str | None) -> None:
        rows = [i for i, r in enumerate(self._rows) if r.name in keep]
        current_row = next((i for i, r in enumerate(self._rows) if r.name == current), None)
        if rows:
            self._select_rows(rows, current_row if current_row in rows else rows[0])

    def _select_rows(self, rows: list[int], current_row: int) -> None:
        model = self.table.selectionModel()
        selection = QItemSelection()
        for i in rows:
            selection.select(self.table.model().index(i, 0), self.table.model().index(i, 2))
        model.setCurrentIndex(
            self.table.model().index(current_row, LEVEL_COL),
            QItemSelectionModel.SelectionFlag.NoUpdate,
        )
        model.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _current_level(self) -> str | None:
        index = self.table.currentIndex()
        if index.isValid() and index.row() < len(self._rows):
            return self._rows[index.row()].name
        return None

    def _row_of(self, name: str) -> LevelRow | None:
        return next((r for r in self._rows if r.name == name), None)

    def _set_current_needle(self, needle: tuple[str, Side] | None) -> None:
        """Outline the picked needle (and only it)."""
        self._current_needle = needle
        for i, row in enumerate(self._rows):
            for col, side in SIDE_OF_COLUMN.items():
                item = self.table.item(i, col)
                if item is not None:
                    item.setData(CURRENT_ROLE, needle == (row.name, side))

    def _rebuild_add_menu(self) -> None:
        """Levels that can be added: those next to the list first, then every other one by
        region. Built eagerly so the menu is always in step with the rows."""
        menu = self.add_level_menu
        menu.clear()
        present = {r.name for r in self._rows}
        free = [n for n in LEVEL_NAMES if n not in present]
        if present:
            idx = sorted(level_index(n) for n in present)
            near = []
            if idx[0] > 0 and LEVEL_NAMES[idx[0] - 1] in free:
                near.append((LEVEL_NAMES[idx[0] - 1], f"above {LEVEL_NAMES[idx[0]]}"))
            if idx[-1] + 1 < len(LEVEL_NAMES) and LEVEL_NAMES[idx[-1] + 1] in free:
                near.append((LEVEL_NAMES[idx[-1] + 1], f"below {LEVEL_NAMES[idx[-1]]}"))
            for name, where in near:
                _add_level_action(menu, f"{name}  ({where})", name)
            if near:
                menu.addSeparator()
        for region, letter in REGIONS:
            names = [n for n in free if n.startswith(letter)]
            if not names:
                continue
            sub = menu
            if len(names) > 1:
                sub = QMenu(region, menu)
                menu.addMenu(sub)
            for name in names:
                _add_level_action(sub, name, name)
        self.add_level_button.setEnabled(bool(free))

    # ---- user actions -----------------------------------------------------------------
    def _on_clicked(self, index: QModelIndex | QPersistentModelIndex) -> None:
        mods = QApplication.keyboardModifiers()
        extend = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        if mods & extend or not index.isValid() or index.row() >= len(self._rows):
            return
        row = self._rows[index.row()]
        side = SIDE_OF_COLUMN.get(index.column())
        if side is not None and row.has_needle(side):
            self._set_current_needle((row.name, side))
            self._refresh()
            self.needle_selected.emit(row.name, side)
        else:
            self._set_current_needle(None)
            self._refresh()
            self.level_selected.emit(row.name)

    def _on_selection_changed(self) -> None:
        if self._updating:
            return
        selected = self.selected_levels()
        if self._current_needle and selected != [self._current_needle[0]]:
            self._set_current_needle(None)  # several rows: Remove acts on whole levels
        self._refresh()

    def _proposable(self) -> list[str]:
        """Levels Propose would send: the selected detected ones, or all detected."""
        selected = self.selected_levels()
        pool = [r for r in self._rows if not selected or r.name in selected]
        return [r.name for r in pool if r.detected]

    def _on_propose(self) -> None:
        levels = self._proposable()
        if levels and not self._busy:
            self.propose_requested.emit(levels, self.gauge())

    def _on_gauge_index(self, _index: int) -> None:
        self._refresh()
        self.gauge_changed.emit(self.gauge())

    def _place_level(self) -> str | None:
        selected = self.selected_levels()
        return selected[0] if len(selected) == 1 else None

    def _on_place(self, side: Side) -> None:
        level = self._place_level()
        if level is not None:
            self.place_requested.emit(level, side)

    def _removal(self) -> list[tuple[str, Side | None]]:
        """What Remove would remove: the picked needle, or both needles of each selected
        level that has any."""
        if self._current_needle is not None:
            return [self._current_needle]
        out: list[tuple[str, Side | None]] = []
        for name in self.selected_levels():
            row = self._row_of(name)
            if row is not None and row.has_any_needle:
                out.append((name, None))
        return out

    def _on_remove(self) -> None:
        for level, side in self._removal():
            self.remove_requested.emit(level, side)

    def _on_add_level(self, action: QAction) -> None:
        name = action.data()
        if name:
            self.add_level_requested.emit(str(name))

    # ---- state of the buttons ---------------------------------------------------------
    def _refresh(self) -> None:
        """Enable and explain every button from the current rows and selection."""
        selected = self.selected_levels()
        proposable = self._proposable()
        self.propose_button.setText("Propose selected" if selected else "Propose all")
        self.propose_button.setEnabled(bool(proposable) and not self._busy)
        if self._busy:
            tip = "A proposal is running"
        elif proposable:
            tip = f"Propose left and right needles ({self.gauge()}) for {', '.join(proposable)}"
        elif selected:
            tip = "The selected levels are not in this CT's anatomy: place their needles by hand"
        else:
            tip = "No level was found in this CT"
        self.propose_button.setToolTip(tip)

        place = self._place_level()
        for button, side in (
            (self.place_left_button, Side.LEFT), (self.place_right_button, Side.RIGHT),
        ):
            button.setEnabled(place is not None)
            button.setToolTip(
                f"Place a new needle on the patient's {side.value} at {place} by clicking "
                "in the views" if place else "Select one level first"
            )

        removal = self._removal()
        self.remove_button.setEnabled(bool(removal))
        if not removal:
            self.remove_button.setToolTip("Select a needle, or levels that have needles")
        elif (picked := removal[0][1]) is not None:
            self.remove_button.setToolTip(f"Remove the {removal[0][0]} {picked.value} needle (Del)")
        else:
            names = ", ".join(level for level, _ in removal)
            self.remove_button.setToolTip(f"Remove both needles of {names} (Del)")
        has_detected = any(r.detected for r in self._rows)
        self.shift_up_button.setEnabled(has_detected)
        self.shift_down_button.setEnabled(has_detected)
        self._refresh_summary()

    def _refresh_summary(self) -> None:
        """One line that counts the verdicts, so a glance tells whether anything is red."""
        text, tooltip = verdict_summary(self._rows)
        self.summary_label.setText(text)
        if tooltip is not None:
            self.summary_label.setToolTip(tooltip)


def _add_level_action(menu: QMenu, text: str, level: str) -> None:
    """An action made here, not the one ``menu.addAction(text)`` returns: PySide may hand
    back a stale wrapper of another type for the new object's address (seen once in the
    suite as "'QSurface' object has no attribute 'setData'")."""
    action = QAction(text, menu)
    action.setData(level)
    menu.addAction(action)
