"""File ▸ Cases…: the CTs opened or retrieved before, with their latest plan and its state;
filter, sort by a column, and reopen a case with its plan in one action.

Thin: it shows `CaseRow`s it is given and emits what the user asks (`refresh_requested` with
the filter and sort, `open_requested`, `forget_requested`).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from planning.case_list import STATES, CaseRow
from planning.checks import Status
from planning.vocabulary import (
    PLAN_STATE_COLORS,
    STATUS_COLORS,
    format_dicom_date,
    format_person_name,
)
from widgets.row_picker import row_picker_table

COLUMNS = ("Last change", "Patient", "Patient ID", "Study date", "Description", "CT from",
           "Plan", "State", "Needles")
SORTABLE = {0: "changed", 1: "patient", 3: "study_date", 7: "state"}


class CaseListDialog(QDialog):
    refresh_requested = Signal(str, str, str, bool)  # text, state, sort key, descending
    open_requested = Signal(object)  # CaseRow
    forget_requested = Signal(object)  # CaseRow

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("caseListDialog")
        self.setWindowTitle("Cases")
        self.resize(1150, 560)
        self.rows: list[CaseRow] = []
        self.sort_key, self.descending = "changed", True
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter: patient, ID, description, accession, "
                                            "folder")
        self.filter_edit.setClearButtonEnabled(True)
        self.state_combo = QComboBox()
        self.state_combo.addItem("every state", "")
        for state in STATES:
            self.state_combo.addItem(f"plan {state}", state)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.state_combo)
        layout.addLayout(top)
        self.table = row_picker_table(COLUMNS)
        self.table.setObjectName("caseTable")
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(0, Qt.SortOrder.DescendingOrder)
        layout.addWidget(self.table, 1)
        self.message = QLabel("")
        self.message.setObjectName("caseMessage")
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open with its plan")
        self.open_button.setDefault(True)
        self.forget_button = QPushButton("Forget")
        self.forget_button.setToolTip("Remove from this list (the CT and plan files stay)")
        close = QPushButton("Close")
        buttons.addStretch(1)
        for b in (self.forget_button, self.open_button, close):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.filter_edit.textChanged.connect(lambda _t: self.refresh())
        self.state_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        header.sectionClicked.connect(self._sort_by)
        self.table.itemDoubleClicked.connect(lambda _item: self._open())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.open_button.clicked.connect(self._open)
        self.forget_button.clicked.connect(self._forget)
        close.clicked.connect(self.reject)
        self._update_buttons()

    def refresh(self) -> None:
        self.refresh_requested.emit(self.filter_edit.text(), self.state_combo.currentData(),
                                    self.sort_key, self.descending)

    def _sort_by(self, column: int) -> None:
        key = SORTABLE.get(column)
        if key is None:
            header = self.table.horizontalHeader()
            column = next(c for c, k in SORTABLE.items() if k == self.sort_key)
            header.setSortIndicator(column, Qt.SortOrder.DescendingOrder if self.descending
                                    else Qt.SortOrder.AscendingOrder)
            return
        self.descending = not self.descending if key == self.sort_key else True
        self.sort_key = key
        self.table.horizontalHeader().setSortIndicator(
            column, Qt.SortOrder.DescendingOrder if self.descending
            else Qt.SortOrder.AscendingOrder)
        self.refresh()

    def show_rows(self, rows: list[CaseRow]) -> None:
        self.rows = list(rows)
        self.table.setRowCount(0)
        for row in self.rows:
            r = self.table.rowCount()
            self.table.insertRow(r)
            rec = row.record
            source = {"pacs": f"PACS {rec.source_node}", "demo": "demo CT",
                      "nifti": "NIfTI file", "folder": "DICOM folder"}.get(rec.source,
                                                                         rec.source)
            values = (_when(row.changed_at), format_person_name(rec.patient_name),
                      rec.patient_id, format_dicom_date(rec.study_date), rec.description,
                      source if row.ct_exists else f"{source} (CT gone)",
                      Path(row.plan_path).name if row.plan_path else "no plan saved",
                      row.plan_state or "—", str(row.needles) if row.plan_path else "")
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c == 5:
                    item.setToolTip(rec.ct_path)
                if c == 6 and row.plan_path:
                    item.setToolTip(row.plan_path)
                if c == 7 and row.plan_state:
                    item.setForeground(QColor(PLAN_STATE_COLORS[row.plan_state]))
                if c == 5 and not row.ct_exists:
                    item.setForeground(QColor(STATUS_COLORS[Status.UNSAFE]))
                self.table.setItem(r, c, item)
        self.message.setText(f"{len(self.rows)} case{'s' if len(self.rows) != 1 else ''}")
        if self.rows:
            self.table.selectRow(0)
        self._update_buttons()

    def selected(self) -> CaseRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def _update_buttons(self) -> None:
        row = self.selected()
        self.open_button.setEnabled(row is not None)
        self.forget_button.setEnabled(row is not None)

    def _open(self) -> None:
        row = self.selected()
        if row is not None:
            self.open_requested.emit(row)

    def _forget(self) -> None:
        row = self.selected()
        if row is not None:
            self.forget_requested.emit(row)

    def show_message(self, text: str) -> None:
        self.message.setText(text)


def _when(stamp: float) -> str:
    return _dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else ""
