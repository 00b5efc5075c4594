"""File ▸ Cases…: a CT opened from a folder and its saved plan are listed with the plan's
state, and one action reopens both."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import open_window
from orthanc_pacs import generated_ct
from PySide6.QtCore import Qt

from planning.io.dicom_write import write_series
from planning.plan import Trajectory
from planning.volume import PatientInfo

pytestmark = pytest.mark.gui


def test_opened_ct_and_saved_plan_are_listed_and_reopened(qtbot, monkeypatch,
                                                           tmp_path) -> None:
    patient = PatientInfo(name="DOE^JOHN", patient_id="P001", study_date="20240310",
                          study_description="CT spine", accession_number="ACC1")
    volume = replace(generated_ct(patient, slices=12), study_uid="1.2.826.0.1.3680043.10.99.1",
                     series_uid="1.2.826.0.1.3680043.10.99.2")
    folder = tmp_path / "ct"
    write_series(volume, folder)
    win = open_window(qtbot, monkeypatch)
    win.open_path(folder)
    qtbot.waitUntil(lambda: win.controller.volume is not None, timeout=30000)
    (row,) = win.workspace.cases.rows()
    assert (row.record.patient_id, row.record.source, row.plan_path) == ("P001", "folder", "")
    centre = win.controller.volume.to_lps((24, 24, 6))
    tip = centre + np.array([0.0, 10.0, 0.0])
    needle = Trajectory("L1", "left", tuple(centre), tuple(tip), "11G")
    win.workspace.document.edit(replace(win.workspace.document.plan,
                                        trajectories=(needle,)), "Add needle")
    plan_path = tmp_path / "plan.vplan.json"
    assert win.workspace.files.save(plan_path)
    (row,) = win.workspace.cases.rows()
    assert Path(row.plan_path) == plan_path.resolve()
    assert row.plan_state == "draft"  # no anatomy here: the needle is not checked
    assert row.needles == 1
    # a new document, then Cases… → open: the CT and its plan come back
    win.workspace.document.reset(replace(win.workspace.document.plan, trajectories=()), None)
    win.show_cases()
    dialog = win.case_list_dialog
    qtbot.waitExposed(dialog)
    assert dialog.table.rowCount() == 1
    assert dialog.table.item(0, 1).text() == "DOE, John"
    assert dialog.table.item(0, 7).text() == "draft"
    dialog.filter_edit.setText("nobody")
    assert dialog.table.rowCount() == 0
    dialog.filter_edit.setText("ACC1")
    assert dialog.table.rowCount() == 1
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(win.workspace.document.plan.trajectories) == 1, timeout=30000)
    assert win.workspace.document.path == plan_path.resolve() or \
        win.workspace.document.path == plan_path
    assert not dialog.isVisible()
