"""Issue 9 in the window: the plan exported as DICOM SEG, Slicer markups and meshes; markups
opened back as a plan; a DICOM SEG imported as the anatomy; a bad segmentation reported
with its file name while the anatomy stays (Xvfb)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pydicom
import pytest

from app.main_window import MainWindow
from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.demo import demo_ct_path, load_demo_truth
from planning.io import load_path
from planning.plan import Side, Trajectory
from tests.app.gui_helpers import open_window, pedicle_needle

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def demo():
    folder = demo_ct_path()
    truth = load_demo_truth(folder)
    return load_path(folder), truth, anatomy_from_demo_truth(truth)


def _needle(truth, level: str, side: Side) -> Trajectory:
    return pedicle_needle(truth, level, side, 0.8)


def _open(qtbot, monkeypatch, volume, anatomy) -> MainWindow:
    """The window on ``volume`` with ``anatomy``, leaving without asking to save."""
    return open_window(qtbot, monkeypatch, volume, anatomy)


@pytest.fixture
def window(qtbot, demo, monkeypatch):
    volume, truth, anatomy = demo
    win = _open(qtbot, monkeypatch, volume, anatomy)
    plan = win.workspace.document.plan
    for side in Side:
        plan = plan.with_trajectory(_needle(truth, "L2", side))
    win.workspace.document.edit(plan, "Place L2 pair")
    yield win
    win.workspace.assessment.shutdown()


def _wait_task(qtbot, win) -> None:
    qtbot.waitUntil(lambda: not win.controller.is_busy_with_task, timeout=120000)


def test_export_seg_markups_meshes_and_read_them_back(qtbot, window, tmp_path) -> None:
    ws = window.workspace
    plan = ws.document.plan
    seg, mrk, meshes = tmp_path / "p-seg.dcm", tmp_path / "p.mrk.json", tmp_path / "stl"
    assert ws.exports.export(seg_path=seg, markups_path=mrk, mesh_dir=meshes)
    _wait_task(qtbot, window)
    written = {Path(p) for p in ws.exports.last_export.written}
    assert {seg, mrk, meshes} <= written
    ds = pydicom.dcmread(seg)
    assert ds.Modality == "SEG"
    assert ds.FrameOfReferenceUID == window.controller.volume.frame_of_reference_uid
    assert {"needle_L2_left.stl", "needle_L2_right.stl", "canal.stl", "L2.stl"} <= \
        {p.name for p in meshes.iterdir()}

    ws.document.edit(plan.without("L2"), "Remove L2")
    assert ws.files.open_plan(mrk)  # File ▸ Open plan takes Slicer markups
    again = ws.document.plan
    assert [t.key for t in again.trajectories] == [t.key for t in plan.trajectories]
    for a, b in zip(again.trajectories, plan.trajectories, strict=True):
        assert np.abs(a.entry - b.entry).max() < 1e-6
    assert again.frame_of_reference_uid == window.controller.volume.frame_of_reference_uid
    assert ws.document.path is None  # imported: saving asks for a plan file, never the .mrk
    qtbot.waitUntil(lambda: len(ws.editor.results) == 2, timeout=20000)

    # the SEG as the anatomy: the same levels, and the needles checked against it
    window.controller.import_segmentation(seg)
    qtbot.waitUntil(lambda: seg.name in window.controller.anatomy.source, timeout=60000)
    imported = window.controller.anatomy
    assert set(imported.levels) >= {"L1", "L2", "L3"}
    assert int(imported.vertebra_mask("L2").sum()) > 1000


def test_a_bad_segmentation_is_reported_by_name_and_the_anatomy_stays(qtbot, window,
                                                                       tmp_path,
                                                                       monkeypatch) -> None:
    errors: list[tuple[str, object]] = []
    monkeypatch.setattr("app.main_window.report_error",
                        lambda _w, action, exc: errors.append((action, exc)))
    before = window.controller.anatomy
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti file at all")
    window.controller.import_segmentation(bad)
    qtbot.waitUntil(lambda: bool(errors), timeout=30000)
    action, exc = errors[0]
    assert "broken.nii.gz" in action and "broken.nii.gz" in str(exc)
    assert window.controller.anatomy is before


def test_send_the_ct_too_is_a_setting(qtbot, window, monkeypatch) -> None:
    from widgets.settings_dialog import SettingsDialog

    ws = window.workspace
    assert ws.exports.send_ct() is False

    def accept(dialog: SettingsDialog) -> bool:
        assert dialog.send_ct() is False
        dialog.send_ct_check.setChecked(True)
        return True

    monkeypatch.setattr(SettingsDialog, "exec", accept)
    ws.show_settings()
    assert ws.exports.send_ct() is True
    sent: dict = {}
    monkeypatch.setattr(ws.exports, "export", lambda **kw: sent.update(kw) or True)
    ws.settings.setValue("export/dicom_node", "ANGIO@127.0.0.1:11112")
    ws.exports.send_dialog()
    assert sent == {"send_to": "ANGIO@127.0.0.1:11112", "send_ct": True}


def test_a_ct_without_uids_warns_at_load_and_exports_into_one_kept_study(qtbot, demo, tmp_path,
                                                                         monkeypatch) -> None:
    """A CT an anonymiser left without Study / Series Instance UIDs: the window says so on
    load; the first export makes one study, keeps it in the plan (to be saved) and files
    both exports there; a second export does not make another."""
    import dataclasses

    from planning.io.dicom_series import missing_uid_warning

    volume, truth, anatomy = demo
    blank = dataclasses.replace(volume, study_uid="", series_uid="",
                                warnings=[missing_uid_warning("", ""), *volume.warnings])
    win = _open(qtbot, monkeypatch, blank, anatomy)
    assert win.warning_label.isVisible()
    assert "no Study Instance UID and Series Instance UID" in win.warning_label.toolTip() + \
        win.warning_label.text()
    ws = win.workspace
    ws.document.edit(ws.document.plan.with_trajectory(_needle(truth, "L2", Side.LEFT)),
                     "Place L2 left")
    ws.document.save(tmp_path / "plan.vplan.json")
    assert not ws.document.is_dirty and ws.document.plan.study_uid == ""
    first, second = tmp_path / "a-sr.dcm", tmp_path / "b-sr.dcm"
    assert ws.exports.export(sr_path=first)
    _wait_task(qtbot, win)
    study = ws.document.plan.study_uid
    assert study and ws.document.plan.series_uid and ws.document.is_dirty  # keep it: save
    assert pydicom.dcmread(first).StudyInstanceUID == study
    assert ws.exports.export(sr_path=second)
    _wait_task(qtbot, win)
    assert ws.document.plan.study_uid == study
    assert pydicom.dcmread(second).StudyInstanceUID == study
    win.workspace.assessment.shutdown()
