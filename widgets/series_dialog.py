"""Series chooser: lists the series found in a DICOM folder so the user picks the CT to plan on.

Takes the `SeriesInfo` records from `planning.io.dicom_series.scan_folder` and only reads
their attributes, so it stays a thin view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from planning.vocabulary import format_dicom_date, format_person_name
from widgets.row_picker import row_picker_table

COLUMNS = ("Patient", "Study date", "Series", "Description", "Modality", "Images",
           "Slice thickness")


def _row(info: Any) -> list[str]:
    patient = getattr(info, "patient", None)
    name = format_person_name(getattr(patient, "name", ""))
    pid = getattr(patient, "patient_id", "")
    thickness = getattr(info, "slice_thickness_mm", None)
    number = getattr(info, "series_number", None)
    return [
        f"{name} ({pid})" if pid else name,
        format_dicom_date(getattr(patient, "study_date", "")),
        "" if number is None else str(number),
        getattr(info, "description", "") or "—",
        getattr(info, "modality", ""),
        str(getattr(info, "n_images", "")),
        "—" if not thickness else f"{float(thickness):.2f} mm",
    ]


class SeriesDialog(QDialog):
    """Modal table of series; OK or a double click chooses one."""

    def __init__(
        self,
        series: Sequence[Any],
        skipped_files: int = 0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a series")
        self._series = list(series)
        self.table = row_picker_table(COLUMNS, len(self._series), self)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, info in enumerate(self._series):
            for c, text in enumerate(_row(info)):
                item = QTableWidgetItem(text)
                if c in (5, 6):
                    item.setTextAlignment(right)
                self.table.setItem(r, c, item)
        self.table.selectRow(self._default_row())
        self.table.doubleClicked.connect(self.accept)

        intro = QLabel(
            f"This folder holds {len(self._series)} series. "
            "Choose the CT to plan on (thin slices, bone or standard kernel).",
            self,
        )
        intro.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table)
        if skipped_files:
            note = QLabel(f"{skipped_files} file(s) in the folder were not DICOM images "
                          "and were skipped.", self)
            note.setObjectName("noteLabel")
            layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(900, 190 + 34 * min(len(self._series), 12))

    def _default_row(self) -> int:
        """The CT series with the most images: usually the thin-slice one to plan on."""
        if not self._series:
            return -1

        def score(i: int) -> tuple[bool, int]:
            info = self._series[i]
            return getattr(info, "modality", "") == "CT", int(getattr(info, "n_images", 0) or 0)
        return max(range(len(self._series)), key=score)

    def selected_series(self) -> Any | None:
        """The chosen SeriesInfo, or None if nothing is selected."""
        rows = self.table.selectionModel().selectedRows()
        return self._series[rows[0].row()] if rows else None
