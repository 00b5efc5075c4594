"""The training dock: a case library, the case in progress with its clock, and the score.

Thin: it shows what the training session gives it and emits the trainee's requests. The
reference plan never passes through it before "Submit"; afterwards the score table lists
every needle's errors, clearance and points, and each row's tooltip says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from planning.checks import Status
from planning.vocabulary import STATUS_COLORS

PASS_COLOR = STATUS_COLORS[Status.SAFE]
FAIL_COLOR = STATUS_COLORS[Status.UNSAFE]
SCORE_ROWS = ("Entry Δ (mm)", "Tip Δ (mm)", "Angle Δ (°)", "Canal (mm)", "Grade", "Points",
              "Result")
"""The score table's rows; a column per needle (as in the reports: it fits a narrow dock)."""


def _number(value: float | None, unit: str, decimals: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:.{decimals}f} {unit}".strip().replace("-", "\u2212")


class TrainingPanel(QWidget):
    """Case list, start/submit/stop, clock, score table and the trainee report button."""

    library_chosen = Signal(object)  # Path
    start_requested = Signal(object)  # TrainingCase
    submit_requested = Signal()
    stop_requested = Signal()
    report_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._cases: list[Any] = []
        self.library_label = QLabel("")
        self.library_label.setWordWrap(True)
        self.library_label.setObjectName("hintLabel")
        choose = QPushButton("Case library…")
        choose.setToolTip("Choose a folder of training cases (one sub-folder with a "
                          "case.json per case)")
        choose.clicked.connect(self._choose_library)
        self.case_list = QListWidget()
        self.case_list.setObjectName("caseList")
        self.case_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.case_list.currentRowChanged.connect(self._case_selected)
        self.case_list.itemDoubleClicked.connect(lambda _item: self._start())
        self.problems_label = QLabel("")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet(f"color: {FAIL_COLOR};")
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.trainee_edit = QLineEdit()
        self.trainee_edit.setPlaceholderText("Your name (for the report)")
        self.fluoro_only_box = QCheckBox("Fluoroscopy only (no CT slices)")
        self.fluoro_only_box.setToolTip(
            "As in the angio suite: plan on simulated C-arm images (AP and lateral DRRs) "
            "without the CT slices or 3D. Click the entry "
            "and the tip in a projection; drag them in the other one to set their depth.")
        self.start_button = QPushButton("Start case")
        self.start_button.setObjectName("primaryButton")
        self.start_button.clicked.connect(self._start)
        self.submit_button = QPushButton("Submit plan")
        self.submit_button.setObjectName("primaryButton")
        self.submit_button.setToolTip("Score the needles against the hidden reference plan")
        self.submit_button.clicked.connect(self.submit_requested)
        self.stop_button = QPushButton("Leave training")
        self.stop_button.clicked.connect(self.stop_requested)
        self.report_button = QPushButton("Save trainee report (PDF)…")
        self.report_button.clicked.connect(self.report_requested)
        self.clock_label = QLabel("")
        self.clock_label.setObjectName("trainingClock")
        self.clock_label.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.task_label = QLabel("")
        self.task_label.setWordWrap(True)
        self.verdict_label = QLabel("")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setStyleSheet("font-size: 12pt; font-weight: bold;")
        self.score_table = QTableWidget(len(SCORE_ROWS), 0)
        self.score_table.setObjectName("scoreTable")
        self.score_table.setVerticalHeaderLabels(list(SCORE_ROWS))
        self.score_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.score_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch)
        self.rubric_label = QLabel("")
        self.rubric_label.setWordWrap(True)
        self.rubric_label.setObjectName("hintLabel")

        top = QHBoxLayout()
        top.addWidget(self.library_label, 1)
        top.addWidget(choose)
        form = QFormLayout()
        form.addRow("Trainee", self.trainee_edit)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.submit_button, self.stop_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.case_list, 2)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.description)
        layout.addLayout(form)
        layout.addWidget(self.fluoro_only_box)
        layout.addLayout(buttons)
        layout.addWidget(self.clock_label)
        layout.addWidget(self.task_label)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.score_table)
        layout.addWidget(self.report_button)
        layout.addWidget(self.rubric_label)
        self.set_state("idle")

    # ---- shown state (never emits) ----------------------------------------------------
    def set_cases(self, library: Path, cases: list[Any], problems: list[str]) -> None:
        self._cases = list(cases)
        self.library_label.setText(f"Library: {library}")
        self.library_label.setToolTip(str(library))
        self.case_list.blockSignals(True)
        self.case_list.clear()
        for case in cases:
            item = QListWidgetItem(f"{case.title}\n    {', '.join(case.levels)} · "
                                   f"{case.gauge} · {case.ct_label}")
            item.setToolTip(case.description)
            self.case_list.addItem(item)
        self.case_list.blockSignals(False)
        self.problems_label.setText("\n".join(f"Not listed: {p}" for p in problems))
        self.problems_label.setVisible(bool(problems))
        if cases:
            self.case_list.setCurrentRow(0)
            self._case_selected(0)

    def selected_case(self) -> Any | None:
        row = self.case_list.currentRow()
        return self._cases[row] if 0 <= row < len(self._cases) else None

    def set_state(self, state: str) -> None:
        """"idle" (choose a case), "loading", "running" (planning) or "submitted"."""
        self._state = state
        idle = state in ("idle", "submitted")
        self.case_list.setEnabled(idle)
        self.start_button.setEnabled(idle and bool(self._cases))
        self.start_button.setText("Start case" if state == "idle" else "Start again")
        self.trainee_edit.setEnabled(idle)
        self.fluoro_only_box.setEnabled(idle)
        self.submit_button.setEnabled(state == "running")
        self.stop_button.setEnabled(state != "idle")
        self.report_button.setVisible(state == "submitted")
        if state in ("idle", "loading", "running"):
            self.verdict_label.setText("")
            self.score_table.setColumnCount(0)
            self.score_table.setVisible(False)
            self.rubric_label.setText("")
            self.rubric_label.setMinimumHeight(0)

    @property
    def state(self) -> str:
        return self._state

    def set_clock(self, text: str) -> None:
        self.clock_label.setText(text)

    def set_task(self, text: str) -> None:
        self.task_label.setText(text)

    def show_score(self, score: Any) -> None:
        """The score of the submitted attempt: verdict, a row per needle, the rubric."""
        color = PASS_COLOR if score.passed else FAIL_COLOR
        self.verdict_label.setText(score.summary())
        self.verdict_label.setStyleSheet(f"font-size: 12pt; font-weight: bold; color: {color};")
        needles = [*score.needles, *score.extra]
        table = self.score_table
        table.setColumnCount(len(needles))
        table.setHorizontalHeaderLabels(
            [f"{n.level} {n.side.value[0].upper()}" + ("+" if n.is_extra else "")
             for n in needles])
        for c, n in enumerate(needles):
            header = table.horizontalHeaderItem(c)
            header.setToolTip(n.label + (" (not in the reference)" if n.is_extra else ""))
            values = (_number(n.entry_error_mm, ""), _number(n.tip_error_mm, ""),
                      _number(n.angle_error_deg, ""), _number(n.clearance_mm, ""),
                      n.grade or "—", f"{n.points:.0f}/{n.max_points:.0f}",
                      "FAIL" if n.failed else "OK")
            for r, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip("\n".join(n.reasons))
                if r == len(values) - 1:
                    item.setForeground(QColor(FAIL_COLOR if n.failed else PASS_COLOR))
                table.setItem(r, c, item)
        table.resizeRowsToContents()
        table.setFixedHeight(table.horizontalHeader().sizeHint().height()
                             + sum(table.rowHeight(r) for r in range(table.rowCount()))
                             + 2 * table.frameWidth() + 2)
        table.setVisible(True)
        self.rubric_label.setText("How the score is made:\n• " + "\n• ".join(
            score.rubric.describe()))
        # a wrapped label's height is not in its minimum size: without this the dock's
        # scroll area squeezes the rubric to one line instead of scrolling to it
        self.rubric_label.setMinimumHeight(
            self.rubric_label.heightForWidth(max(self.width() - 24, 240)))

    # ---- user actions -------------------------------------------------------------------
    def _case_selected(self, _row: int) -> None:
        case = self.selected_case()
        self.description.setText("" if case is None else
                                 f"<b>{case.title}</b><br>{case.description}<br>"
                                 f"Plan: {', '.join(case.levels)} (bilateral, {case.gauge})")
        if case is not None:
            self.fluoro_only_box.setChecked(bool(case.fluoro_only))
        self.start_button.setEnabled(case is not None and self._state in ("idle", "submitted"))

    def _start(self) -> None:
        case = self.selected_case()
        if case is not None and self._state in ("idle", "submitted"):
            self.start_requested.emit(case)

    def _choose_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a case library folder")
        if folder:
            self.library_chosen.emit(Path(folder))

    @property
    def trainee_name(self) -> str:
        return self.trainee_edit.text().strip()

    @property
    def fluoro_only(self) -> bool:
        return self.fluoro_only_box.isChecked()
