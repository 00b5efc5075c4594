"""The status bar's progress bar with a Cancel button, for background work (loading,
finding the spine, proposals, exports): the GUI never freezes and long work can be stopped.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


class TaskIndicator(QWidget):
    """A status-bar progress bar with a Cancel button for background work."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setMaximumWidth(320)  # long stage names must not widen the window
        self.bar = QProgressBar()
        self.bar.setFixedWidth(140)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("taskCancel")
        for w in (self.label, self.bar, self.cancel_button):
            layout.addWidget(w)
        self._cancel: Any = None
        self.cancel_button.clicked.connect(lambda: self._cancel and self._cancel())
        self.hide()

    def start(self, text: str, cancel: Any) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self._cancel = cancel
        self.show()

    def progress(self, done: int, total: int, message: str) -> None:
        show_progress(self.bar, self.label, done, total, message)

    def finish(self) -> None:
        self._cancel = None
        self.hide()


def show_progress(bar: QProgressBar, label: QLabel, done: int, total: int, text: str) -> None:
    """``done`` of ``total`` steps on ``bar`` and ``text`` (when not empty) on ``label``.

    A total of 0 counts as 1 (a 0–0 range would turn the bar into a busy indicator), and
    ``done`` never overshoots the total.
    """
    bar.setRange(0, max(total, 1))
    bar.setValue(min(done, max(total, 1)))
    if text:
        label.setText(text)
