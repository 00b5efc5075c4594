"""File ▸ Open from PACS…: a search form, the matching studies, their series with thumbnails,
and Retrieve with progress and Cancel.

Thin: it validates what is typed into a `StudyQuery` and emits what the user asks for; the
application runs the searches and retrievals in the background and answers through
`show_studies`, `set_thumbnail`, `show_progress` and `show_message`.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from planning.checks import Status
from planning.pacs.node import PacsError
from planning.pacs.records import StudyQuery, StudyRecord
from planning.vocabulary import DISCLAIMER, STATUS_COLORS, format_dicom_date, format_person_name
from widgets.row_picker import row_picker_table
from widgets.task_indicator import show_progress

STUDY_COLUMNS = ("Study date", "Patient ID", "Patient", "Born", "Description", "Accession",
                 "CT series")
SERIES_COLUMNS = ("", "No.", "Modality", "Images", "Description")
THUMB = 72


class PacsDialog(QDialog):
    """Search a PACS, pick a study and series, retrieve and open it."""

    search_requested = Signal(str, object)  # node text, StudyQuery
    test_requested = Signal(str)  # node text
    retrieve_requested = Signal(str, object, str)  # node text, StudyRecord, series UID
    thumbnails_requested = Signal(str, object)  # node text, StudyRecord
    cancel_requested = Signal()

    def __init__(self, nodes: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pacsDialog")
        self.setWindowTitle("Open from PACS")
        self.resize(1100, 720)
        self.studies: list[StudyRecord] = []
        layout = QVBoxLayout(self)
        node_row = QHBoxLayout()
        node_row.addWidget(QLabel("PACS"))
        self.node_combo = QComboBox()
        self.node_combo.setEditable(True)
        self.node_combo.addItems(nodes)
        self.node_combo.setMinimumWidth(360)
        self.node_combo.lineEdit().setPlaceholderText(
            "PACS@10.0.0.5:104 or http://pacs:8042/dicom-web")
        self.node_combo.setToolTip("Configured in Edit ▸ Settings ▸ PACS; or type one here")
        node_row.addWidget(self.node_combo, 1)
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("C-ECHO (DICOM) or a one-study search (DICOMweb)")
        node_row.addWidget(self.test_button)
        layout.addLayout(node_row)
        form = QGridLayout()
        self.patient_id = QLineEdit()
        self.patient_name = QLineEdit()
        self.patient_name.setPlaceholderText("DOE^J*  (wildcards * and ?)")
        self.birth_date = QLineEdit()
        self.birth_date.setPlaceholderText("YYYYMMDD")
        self.study_date = QLineEdit()
        self.study_date.setPlaceholderText("YYYYMMDD-YYYYMMDD")
        self.accession = QLineEdit()
        self.modality = QComboBox()
        self.modality.addItems(["CT", ""])
        self.modality.setItemText(1, "any")
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        for col, (label, widget) in enumerate((("Patient ID", self.patient_id),
                                               ("Patient name", self.patient_name),
                                               ("Birth date", self.birth_date))):
            form.addWidget(QLabel(label), 0, 2 * col)
            form.addWidget(widget, 0, 2 * col + 1)
        for col, (label, widget) in enumerate((("Study date", self.study_date),
                                               ("Accession", self.accession),
                                               ("Modality", self.modality))):
            form.addWidget(QLabel(label), 1, 2 * col)
            form.addWidget(widget, 1, 2 * col + 1)
        form.addWidget(self.search_button, 0, 6, 2, 1)
        layout.addLayout(form)
        self.study_table = _table(STUDY_COLUMNS)
        self.study_table.setObjectName("pacsStudies")
        header = self.study_table.horizontalHeader()
        header.setStretchLastSection(False)
        for col in range(len(STUDY_COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(STUDY_COLUMNS.index("Description"),
                                    QHeaderView.ResizeMode.Stretch)
        self.series_table = _table(SERIES_COLUMNS)
        self.series_table.setObjectName("pacsSeries")
        self.series_table.setIconSize(QSize(THUMB, THUMB))
        self.series_table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.series_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Fixed)
        self.series_table.setColumnWidth(0, THUMB + 10)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.study_table)
        splitter.addWidget(self.series_table)
        splitter.setSizes([330, 270])
        layout.addWidget(splitter, 1)
        self.message = QLabel("Enter at least one search key, then Search.")
        self.message.setObjectName("pacsMessage")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        bottom = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setFormat("%p %")
        bottom.addWidget(self.progress, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        bottom.addWidget(self.cancel_button)
        disclaimer = QLabel(DISCLAIMER)
        disclaimer.setObjectName("hintLabel")
        bottom.addWidget(disclaimer)
        self.retrieve_button = QPushButton("Retrieve and open")
        self.retrieve_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        bottom.addWidget(self.retrieve_button)
        bottom.addWidget(self.close_button)
        layout.addLayout(bottom)
        self.search_button.clicked.connect(self._search)
        for edit in (self.patient_id, self.patient_name, self.birth_date, self.study_date,
                     self.accession):
            edit.returnPressed.connect(self._search)
        self.test_button.clicked.connect(self._test)
        self.study_table.itemSelectionChanged.connect(self._study_chosen)
        self.series_table.itemSelectionChanged.connect(self._update_buttons)
        self.series_table.itemDoubleClicked.connect(lambda _item: self._retrieve())
        self.retrieve_button.clicked.connect(self._retrieve)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.close_button.clicked.connect(self.reject)
        self._busy = False

    def set_nodes(self, nodes: list[str]) -> None:
        """The configured nodes in the list; what is typed in the box is kept."""
        typed = self.node_text()
        self.node_combo.clear()
        self.node_combo.addItems(nodes)
        self.node_combo.setCurrentText(typed or (nodes[0] if nodes else ""))

    # ---- what the user asks -------------------------------------------------------------
    def node_text(self) -> str:
        return self.node_combo.currentText().strip()

    def query(self) -> StudyQuery:
        """The form as a query; raises `PacsError` with the field's problem."""
        modality = self.modality.currentText()
        return StudyQuery(patient_id=self.patient_id.text(),
                          patient_name=self.patient_name.text(),
                          birth_date=self.birth_date.text().strip(),
                          study_date=self.study_date.text().strip(),
                          accession=self.accession.text(),
                          modality="" if modality == "any" else modality)

    def _search(self) -> None:
        if self._busy:
            return
        if not self.node_text():
            self.show_message("Choose or type a PACS first.", ok=False)
            return
        try:
            query = self.query()
        except PacsError as exc:
            self.show_message(str(exc), ok=False)
            return
        if query.is_empty:
            self.show_message("Enter at least one search key (a whole PACS is too much to "
                              "list).", ok=False)
            return
        self.show_message("Searching…")
        self.search_requested.emit(self.node_text(), query)

    def _test(self) -> None:
        if self.node_text():
            self.show_message(f"Testing {self.node_text()}…")
            self.test_requested.emit(self.node_text())

    def _study_chosen(self) -> None:
        study = self.selected_study()
        self.series_table.setRowCount(0)
        if study is None:
            self._update_buttons()
            return
        for series in study.series:
            row = self.series_table.rowCount()
            self.series_table.insertRow(row)
            thumb = QTableWidgetItem("")
            thumb.setData(Qt.ItemDataRole.UserRole, series.series_uid)
            self.series_table.setItem(row, 0, thumb)
            images = "?" if series.images is None else str(series.images)
            for col, text in enumerate(("" if series.number is None else str(series.number),
                                        series.modality, images, series.description), 1):
                self.series_table.setItem(row, col, QTableWidgetItem(text))
        if study.series:
            self.series_table.selectRow(0)
        self._update_buttons()
        self.thumbnails_requested.emit(self.node_text(), study)

    def _retrieve(self) -> None:
        study, series_uid = self.selected_study(), self.selected_series_uid()
        if study is not None and series_uid and not self._busy:
            self.retrieve_requested.emit(self.node_text(), study, series_uid)

    def selected_study(self) -> StudyRecord | None:
        rows = self.study_table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows and rows[0].row() < len(self.studies) \
            else None

    def selected_series_uid(self) -> str:
        rows = self.series_table.selectionModel().selectedRows()
        if not rows:
            return ""
        item = self.series_table.item(rows[0].row(), 0)
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else ""

    def _update_buttons(self) -> None:
        self.retrieve_button.setEnabled(bool(self.selected_series_uid()) and not self._busy)

    # ---- answers from the application -------------------------------------------------
    def show_studies(self, studies: list[StudyRecord]) -> None:
        self.studies = list(studies)
        self.study_table.setRowCount(0)
        self.series_table.setRowCount(0)
        for study in self.studies:
            row = self.study_table.rowCount()
            self.study_table.insertRow(row)
            ct = [s for s in study.series if s.modality == "CT"]
            for col, text in enumerate((format_dicom_date(study.study_date), study.patient_id,
                                        format_person_name(study.patient_name),
                                        format_dicom_date(study.birth_date), study.description,
                                        study.accession, str(len(ct)))):
                self.study_table.setItem(row, col, QTableWidgetItem(text))
        found = len(self.studies)
        self.show_message(f"{found} stud{'y' if found == 1 else 'ies'} found."
                          if found else "No study matches.", ok=bool(found))
        if found:
            self.study_table.selectRow(0)

    def set_thumbnail(self, series_uid: str, grey: np.ndarray | None) -> None:
        for row in range(self.series_table.rowCount()):
            item = self.series_table.item(row, 0)
            if item is None or item.data(Qt.ItemDataRole.UserRole) != series_uid:
                continue
            if grey is None:
                item.setText("no image")
                continue
            data = np.ascontiguousarray(grey, dtype=np.uint8)
            image = QImage(data.data, data.shape[1], data.shape[0], data.shape[1],
                           QImage.Format.Format_Grayscale8).copy()
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def show_busy(self, busy: bool, text: str = "") -> None:
        self._busy = busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.search_button.setEnabled(not busy)
        if busy:
            self.progress.setRange(0, 0)
            if text:
                self.show_message(text)
        self._update_buttons()

    def show_progress(self, done: int, total: int, text: str) -> None:
        show_progress(self.progress, self.message, done, total, text)

    def show_message(self, text: str, ok: bool | None = None) -> None:
        colour = {True: STATUS_COLORS[Status.SAFE], False: STATUS_COLORS[Status.UNSAFE],
                  None: ""}[ok]
        self.message.setStyleSheet(f"color: {colour};" if colour else "")
        self.message.setText(text)


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = row_picker_table(columns)
    table.horizontalHeader().setStretchLastSection(True)
    return table
