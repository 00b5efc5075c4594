"""The read-only table a dialog lists its choices in (series of a folder, cases, PACS
studies and series): whole rows are picked, one at a time, and nothing is edited in place."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QWidget


def row_picker_table(columns: Sequence[str], rows: int = 0,
                     parent: QWidget | None = None) -> QTableWidget:
    """A table of ``rows`` × len(``columns``) that selects one whole row, never edits a cell,
    hides the row numbers and alternates the row colours (long rows stay readable); the
    caller sizes its columns."""
    table = QTableWidget(rows, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setAlternatingRowColors(True)
    return table
