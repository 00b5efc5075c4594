"""Settings ▸ PACS: the nodes to search and retrieve from, and this workstation's identity.

A thin widget: it edits text and numbers and asks for a connection test (`test_requested`);
the test itself runs in the application, which answers with `show_test_result`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from planning.checks import Status
from planning.vocabulary import STATUS_COLORS

METHOD_CHOICES = {"get": "C-GET (images come back on the same connection)",
                  "move": "C-MOVE (the PACS sends to this workstation's port)"}


class PacsSettings(QWidget):
    """Edits the node list, the local AE title and storage port, and the DIMSE method."""

    test_requested = Signal(str)  # the node's text

    def __init__(self, nodes: list[str], ae_title: str, port: int, method: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.test_worker: object = None  # the application's running test, kept alive
        layout = QVBoxLayout(self)
        intro = QLabel("PACS to search and retrieve CT from: a DICOM node as "
                       "AE_TITLE@host:port, or a DICOMweb service as http://host:port/dicom-web.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.node_list = QListWidget()
        self.node_list.setObjectName("pacsNodes")
        for text in nodes:
            self._add_item(text)
        layout.addWidget(self.node_list)
        add_row = QHBoxLayout()
        self.node_edit = QLineEdit()
        self.node_edit.setPlaceholderText("PACS@10.0.0.5:104 or http://pacs:8042/dicom-web")
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("C-ECHO (DICOM) or a one-study search (DICOMweb)")
        for w in (self.node_edit, self.add_button, self.remove_button, self.test_button):
            add_row.addWidget(w)
        layout.addLayout(add_row)
        self.result_label = QLabel("")
        self.result_label.setObjectName("pacsTestResult")
        self.result_label.setWordWrap(True)
        layout.addWidget(self.result_label)
        form = QFormLayout()
        self.ae_edit = QLineEdit(ae_title)
        self.ae_edit.setMaxLength(16)
        self.ae_edit.setToolTip("The AE title this workstation calls with; the PACS must know "
                                "it (and, for C-MOVE, its host and storage port)")
        form.addRow("This workstation's AE title", self.ae_edit)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(port)
        self.port_spin.setToolTip("Where this workstation listens while a C-MOVE sends images")
        form.addRow("Storage port (C-MOVE)", self.port_spin)
        self.method_combo = QComboBox()
        for key, text in METHOD_CHOICES.items():
            self.method_combo.addItem(text, key)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(method)))
        form.addRow("Retrieve DICOM nodes with", self.method_combo)
        layout.addLayout(form)
        self.add_button.clicked.connect(self._add_typed)
        self.node_edit.returnPressed.connect(self._add_typed)
        self.remove_button.clicked.connect(self._remove_selected)
        self.test_button.clicked.connect(self._test_selected)

    def _add_item(self, text: str) -> None:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.node_list.addItem(item)

    def _add_typed(self) -> None:
        from planning.pacs.node import RemoteAEError, parse_node  # not at the window's start

        text = self.node_edit.text().strip()
        try:
            parse_node(text)
        except RemoteAEError as exc:
            self.show_test_result(False, str(exc))
            return
        if text not in self.nodes():
            self._add_item(text)
        self.node_edit.clear()
        self.node_list.setCurrentRow(self.node_list.count() - 1)

    def _remove_selected(self) -> None:
        row = self.node_list.currentRow()
        if row >= 0:
            self.node_list.takeItem(row)

    def _test_selected(self) -> None:
        item = self.node_list.currentItem()
        text = item.text().strip() if item is not None else self.node_edit.text().strip()
        if not text:
            self.show_test_result(False, "Choose a node to test.")
            return
        self.result_label.setText(f"Testing {text}…")
        self.result_label.setStyleSheet("")
        self.test_button.setEnabled(False)
        self.test_requested.emit(text)

    def show_test_result(self, ok: bool, text: str) -> None:
        self.test_button.setEnabled(True)
        colour = STATUS_COLORS[Status.SAFE if ok else Status.UNSAFE]
        self.result_label.setText(("✓ " if ok else "✗ ") + text)
        self.result_label.setStyleSheet(f"color: {colour};")

    def nodes(self) -> list[str]:
        return [self.node_list.item(i).text().strip() for i in range(self.node_list.count())
                if self.node_list.item(i).text().strip()]

    def ae_title(self) -> str:
        return self.ae_edit.text().strip() or "VERTEBROPLAN"

    def port(self) -> int:
        return int(self.port_spin.value())

    def method(self) -> str:
        return str(self.method_combo.currentData())
