"""Settings: the default needle gauge, the safety checks' thresholds (Planning) and the
PACS nodes (PACS).

Ranged inputs only (spin boxes with units), so an invalid value cannot be entered; the
defaults and where they come from are in each tooltip.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from planning.assessment.cement import DEFAULT_FILL_RANGE
from planning.carm import DEFAULT_CONVENTION, REGISTRATION_CHOICES, REGISTRATION_QUESTION
from planning.checks import SafetyLimits
from planning.fluoro_views import DEFAULT_SOURCE_TO_DETECTOR_MM, DEFAULT_SOURCE_TO_PATIENT_MM
from planning.plan import GAUGES

if TYPE_CHECKING:  # built by the application when Settings open
    from widgets.pacs_settings import PacsSettings

FIELDS = (
    ("canal_caution_mm", "Canal clearance for caution", 0.5, 10.0, "mm"),
    ("anterior_cortex_warn_mm", "Tip to anterior cortex, caution below", 0.5, 15.0, "mm"),
    ("midline_max_mm", "Tip to midline, caution above", 3.0, 40.0, "mm"),
    ("pair_min_distance_mm", "Left–right needle spacing, caution below", 0.5, 15.0, "mm"),
)


class SettingsDialog(QDialog):
    """Edits a gauge name and a `SafetyLimits`; read them back after ``exec()``."""

    def __init__(self, gauge: str, limits: SafetyLimits, parent: QWidget | None = None, *,
                 planner: str = "", dicom_node: str = "",
                 carm_mm: tuple[float, float] = (DEFAULT_SOURCE_TO_DETECTOR_MM,
                                                  DEFAULT_SOURCE_TO_PATIENT_MM),
                 fill_range: tuple[float, float] = DEFAULT_FILL_RANGE,
                 send_ct: bool = False, convention: str = DEFAULT_CONVENTION,
                 pacs: PacsSettings | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("VertebroPlan settings")
        self.setObjectName("settingsDialog")
        self._limits = limits
        form = QFormLayout()
        self.gauge_combo = QComboBox()
        self.gauge_combo.addItems(list(GAUGES))
        self.gauge_combo.setCurrentText(gauge)
        self.gauge_combo.setToolTip("Gauge of new needles and of automatic proposals")
        form.addRow("Default needle gauge", self.gauge_combo)
        self.planner_edit = QLineEdit(planner)
        self.planner_edit.setPlaceholderText("printed on the report")
        form.addRow("Planner", self.planner_edit)
        self.node_edit = QLineEdit(dicom_node)
        self.node_edit.setPlaceholderText("ANGIO@10.0.0.12:104")
        self.node_edit.setToolTip("The PACS or angio-suite workstation that receives plans: "
                                  "its AE title, host and port")
        form.addRow("Send plans to (AET@host:port)", self.node_edit)
        self.send_ct_check = QCheckBox("with the CT images")
        self.send_ct_check.setChecked(send_ct)
        self.send_ct_check.setToolTip(
            "Send the CT itself with the plan (SR, segmentation, report), so that a "
            "workstation without the pre-op CT receives everything in one study")
        form.addRow("", self.send_ct_check)
        # the simulated fluoroscopy's C-arm: as the angio suite's C-arm is built
        self.detector_spin = _mm_spin(500.0, 2000.0, carm_mm[0],
                                      "Distance from the X-ray source to the detector")
        self.isocentre_spin = _mm_spin(300.0, 1500.0, carm_mm[1],
                                       "Distance from the X-ray source to the isocentre (the "
                                       "level or needle the C-arm is centred on); shorter "
                                       "than source–detector")
        self.detector_spin.valueChanged.connect(
            lambda v: self.isocentre_spin.setMaximum(v - 50.0))
        self.isocentre_spin.setMaximum(self.detector_spin.value() - 50.0)
        form.addRow("C-arm source–detector", self.detector_spin)
        form.addRow("C-arm source–isocentre", self.isocentre_spin)
        # which C-arm angle convention leads: the suite's C-arm decides, not the planner
        self.convention_combo = QComboBox()
        self.convention_combo.setObjectName("carmConvention")
        for key, text in REGISTRATION_CHOICES.items():
            self.convention_combo.addItem(text, key)
        self.convention_combo.setCurrentIndex(max(0, self.convention_combo.findData(convention)))
        self.convention_combo.setToolTip(
            "Both conventions are always shown, each named; this chooses which comes first. "
            "Ask the angio suite: if its C-arm is always told 'head first, supine', its "
            "LAO/RAO refer to the table and are mirrored for a prone patient; if it is told "
            "the real position, it shows DICOM's patient-referenced angles.")
        question = QLabel(REGISTRATION_QUESTION)
        question.setWordWrap(True)
        form.addRow(question, self.convention_combo)
        # cement: as a share of the vertebral body (Molloy 2003, Nieuwenhuijse 2012)
        self.fill_low_spin = _pct_spin(fill_range[0])
        self.fill_high_spin = _pct_spin(fill_range[1])
        self.fill_low_spin.valueChanged.connect(
            lambda v: self.fill_high_spin.setMinimum(v + 1.0))
        self.fill_high_spin.setMinimum(self.fill_low_spin.value() + 1.0)
        fill_row = QHBoxLayout()
        fill_row.addWidget(self.fill_low_spin)
        fill_row.addWidget(QLabel("to"))
        fill_row.addWidget(self.fill_high_spin)
        form.addRow("Cement fill of the body", fill_row)
        self.spins: dict[str, QDoubleSpinBox] = {}
        defaults = SafetyLimits()
        for key, label, lo, hi, unit in FIELDS:
            spin = QDoubleSpinBox()
            spin.setRange(lo, hi)
            spin.setDecimals(1)
            spin.setSingleStep(0.5)
            spin.setSuffix(f" {unit}")
            spin.setValue(float(getattr(limits, key)))
            doc = (SafetyLimits.__dataclass_fields__[key].metadata.get("doc")
                   or f"Default {getattr(defaults, key):g} {unit}")
            spin.setToolTip(str(doc))
            self.spins[key] = spin
            form.addRow(label, spin)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.clicked.connect(self._restore_defaults)
        planning_page = QWidget()
        page_layout = QVBoxLayout(planning_page)
        page_layout.addLayout(form)
        note = QLabel("Changing a threshold re-checks every needle at once.")
        note.setObjectName("hintLabel")
        page_layout.addWidget(note)
        self.tabs = QTabWidget()
        self.tabs.addTab(planning_page, "Planning")
        self.pacs = pacs
        if pacs is not None:
            self.tabs.addTab(pacs, "PACS")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)

    def _restore_defaults(self) -> None:
        defaults = SafetyLimits()
        for key, spin in self.spins.items():
            spin.setValue(float(getattr(defaults, key)))
        self.detector_spin.setValue(DEFAULT_SOURCE_TO_DETECTOR_MM)
        self.isocentre_spin.setValue(DEFAULT_SOURCE_TO_PATIENT_MM)
        self.convention_combo.setCurrentIndex(
            self.convention_combo.findData(DEFAULT_CONVENTION))
        self.fill_high_spin.setMinimum(1.0)
        self.fill_low_spin.setValue(100 * DEFAULT_FILL_RANGE[0])
        self.fill_high_spin.setValue(100 * DEFAULT_FILL_RANGE[1])

    def fill_range(self) -> tuple[float, float]:
        """The cement fill range as fractions of the vertebral body volume."""
        return (float(self.fill_low_spin.value()) / 100.0,
                float(self.fill_high_spin.value()) / 100.0)

    def carm_mm(self) -> tuple[float, float]:
        """(source–detector, source–isocentre) in mm for the simulated fluoroscopy."""
        return float(self.detector_spin.value()), float(self.isocentre_spin.value())

    def convention(self) -> str:
        """The C-arm angle convention that leads: "table" or "patient" (`planning.carm`)."""
        return str(self.convention_combo.currentData())

    def planner(self) -> str:
        return self.planner_edit.text().strip()

    def send_ct(self) -> bool:
        return self.send_ct_check.isChecked()

    def dicom_node(self) -> str:
        return self.node_edit.text().strip()

    def gauge(self) -> str:
        return self.gauge_combo.currentText()

    def limits(self) -> SafetyLimits:
        return dataclasses.replace(self._limits,
                                   **{k: float(s.value()) for k, s in self.spins.items()})


def _pct_spin(fraction: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(1.0, 80.0)
    spin.setDecimals(0)
    spin.setSingleStep(5.0)
    spin.setSuffix(" %")
    spin.setValue(100.0 * fraction)
    spin.setToolTip("Cement volume as a share of the vertebral body volume. Default 15–30 %: "
                    "Molloy et al., Spine 2003 (about 16 % restored strength); "
                    "Nieuwenhuijse et al., Spine 2012 (about 24 % gave the best pain relief)")
    return spin


def _mm_spin(low: float, high: float, value: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(0)
    spin.setSingleStep(10.0)
    spin.setSuffix(" mm")
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin
