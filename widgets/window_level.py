"""Window/level toolbar: preset combo box plus width and level spin boxes."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from planning.vocabulary import WINDOW_PRESETS

CUSTOM = "Custom"


def preset_name(window: float, level: float) -> str:
    """The preset matching a window/level, or "Custom"."""
    for name, (w, lv) in WINDOW_PRESETS.items():
        if abs(w - window) < 0.5 and abs(lv - level) < 0.5:
            return name
    return CUSTOM


class WindowLevelBar(QWidget):
    """Shows the current display window and lets the user pick or type another.

    Emits ``window_level_requested(width_hu, level_hu)``; never changes the views itself.
    ``set_window_level`` updates the controls without emitting (no echo).
    """

    window_level_requested = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preset_combo = QComboBox(self)
        self.preset_combo.setObjectName("presetCombo")
        for i, (name, (w, lv)) in enumerate(WINDOW_PRESETS.items(), start=1):
            self.preset_combo.addItem(f"{name}  (W {w:.0f} / L {lv:.0f})  [{i}]", name)
        self.preset_combo.addItem(CUSTOM, CUSTOM)
        self.preset_combo.setToolTip("Display window preset (keys 1, 2)")
        self.width_spin = self._spin(1, 8000, "Window width in HU (Ctrl+drag left/right)")
        self.level_spin = self._spin(-2000, 4000, "Window level (centre) in HU (Ctrl+drag up/down)")

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        layout.addWidget(QLabel("Window", self))
        layout.addWidget(self.preset_combo)
        layout.addWidget(QLabel("W", self))
        layout.addWidget(self.width_spin)
        layout.addWidget(QLabel("L", self))
        layout.addWidget(self.level_spin)

        self.preset_combo.activated.connect(self._on_preset)
        self.width_spin.editingFinished.connect(self._on_spin)
        self.level_spin.editingFinished.connect(self._on_spin)

    def _spin(self, low: int, high: int, tip: str) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setRange(low, high)
        spin.setSuffix(" HU")
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        return spin

    def set_window_level(self, window: float, level: float) -> None:
        """Show a window/level chosen elsewhere, without emitting."""
        for w in (self.preset_combo, self.width_spin, self.level_spin):
            w.blockSignals(True)
        self.width_spin.setValue(round(window))
        self.level_spin.setValue(round(level))
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(preset_name(window, level)))
        for w in (self.preset_combo, self.width_spin, self.level_spin):
            w.blockSignals(False)

    @Slot(int)
    def _on_preset(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name in WINDOW_PRESETS:
            self.window_level_requested.emit(*WINDOW_PRESETS[name])

    @Slot()
    def _on_spin(self) -> None:
        self.window_level_requested.emit(
            float(self.width_spin.value()), float(self.level_spin.value())
        )
