"""File ▸ Open from PACS… against a real Orthanc: search, thumbnails, retrieve, the CT opens
and a plan sent afterwards goes back to that PACS; Settings ▸ PACS tests a node."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import open_window
from PySide6.QtCore import Qt

from app.settings import open_settings, store_pacs
from tests.app.gui_helpers import ARTIFACTS

pytestmark = pytest.mark.gui


def _browser(qtbot, monkeypatch, filled, node: str):
    settings = open_settings()
    store_pacs(settings, [node, "OTHER@127.0.0.1:1"], filled.pacs.local.ae_title,
               filled.pacs.local.port, "get")
    settings.sync()
    win = open_window(qtbot, monkeypatch)
    win.workspace.settings = open_settings()
    win.open_from_pacs()
    dialog = win.pacs_browser.dialog
    qtbot.waitExposed(dialog)
    return win, dialog


@pytest.mark.parametrize("kind", ["dimse", "web"])
def test_search_thumbnails_retrieve_and_open(qtbot, monkeypatch, filled_pacs, kind) -> None:
    node = str(filled_pacs.pacs.dimse if kind == "dimse" else filled_pacs.pacs.web)
    win, dialog = _browser(qtbot, monkeypatch, filled_pacs, node)
    assert dialog.node_text() == node  # the first configured node is offered
    dialog.patient_name.setText("DOE*")
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.study_table.rowCount() == 2, timeout=20000)
    assert dialog.study_table.item(0, 2).text() == "DOE, John"  # newest first, named so
    assert dialog.study_table.item(0, 0).text() == "2024-03-10"
    assert dialog.series_table.rowCount() == 1  # John's CT; his OT series is not listed
    qtbot.waitUntil(lambda: not dialog.series_table.item(0, 0).icon().isNull(),
                    timeout=20000)
    if kind == "dimse":
        ARTIFACTS.mkdir(exist_ok=True)
        dialog.grab().save(str(ARTIFACTS / "pacs_dialog.png"))
    qtbot.mouseClick(dialog.retrieve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.controller.volume is not None
                    and win.controller.volume.study_uid == filled_pacs.john_study,
                    timeout=30000)
    assert not dialog.isVisible()
    assert win.controller.volume.array.shape == (14, 48, 48)
    assert win.workspace.exports.source_node == node
    # a plan sent now goes to the DICOM PACS the CT came from (not to a DICOMweb URL)
    assert win.workspace.exports.dicom_node() == (node if kind == "dimse" else "")


def test_a_bad_key_and_an_empty_form_are_said_in_the_dialog(qtbot, monkeypatch,
                                                            filled_pacs) -> None:
    _win, dialog = _browser(qtbot, monkeypatch, filled_pacs, str(filled_pacs.pacs.dimse))
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    assert "at least one search key" in dialog.message.text()
    dialog.study_date.setText("2024")
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    assert "not a date or range" in dialog.message.text()
    dialog.study_date.setText("")
    dialog.patient_id.setText("NOBODY")
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "No study matches" in dialog.message.text(), timeout=20000)
    dialog.node_combo.setCurrentText("OTHER@127.0.0.1:1")
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Connection refused" in dialog.message.text(), timeout=20000)


def test_settings_pacs_tab_tests_a_node(qtbot, filled_pacs) -> None:
    from app.pacs_browser import pacs_settings_page

    settings = open_settings()
    store_pacs(settings, [str(filled_pacs.pacs.dimse)], "VERTEBROPLAN", 11112, "move")
    page = pacs_settings_page(settings)
    qtbot.addWidget(page)
    assert page.nodes() == [str(filled_pacs.pacs.dimse)] and page.method() == "move"
    page.node_list.setCurrentRow(0)
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "answers" in page.result_label.text(), timeout=15000)
    page.node_edit.setText("not a node")
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    assert "AE_TITLE@HOST:PORT" in page.result_label.text()
    assert page.nodes() == [str(filled_pacs.pacs.dimse)]
    assert np.all([page.ae_title() == "VERTEBROPLAN", page.port() == 11112])


def test_an_unsaved_plan_pins_its_retrieved_study_in_the_cache(qtbot, monkeypatch,
                                                               filled_pacs) -> None:
    from dataclasses import replace

    from planning.pacs.cache import StudyCache
    from planning.plan import Trajectory

    node = str(filled_pacs.pacs.dimse)
    win, dialog = _browser(qtbot, monkeypatch, filled_pacs, node)
    dialog.patient_id.setText("P001")
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.retrieve_button.isEnabled(), timeout=20000)
    qtbot.mouseClick(dialog.retrieve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.controller.volume is not None, timeout=30000)
    cache = StudyCache()
    assert not [s for s in cache.studies() if s.pinned]
    centre = win.controller.volume.to_lps((24, 24, 7))
    tip = centre + np.array([0.0, 10.0, 0.0])
    needle = Trajectory("L1", "left", tuple(centre), tuple(tip), "11G")
    doc = win.workspace.document
    doc.edit(replace(doc.plan, trajectories=(needle,)), "Add needle")
    assert [s.study_uid for s in cache.studies() if s.pinned] == [filled_pacs.john_study]
    cache.limit_bytes = 1  # everything over the limit: the pinned study still stays
    assert filled_pacs.john_study not in cache.evict()
    assert cache.study_dir(filled_pacs.john_study).is_dir()
    doc.undo_stack.setClean()  # as saving does
    assert not [s for s in cache.studies() if s.pinned]
