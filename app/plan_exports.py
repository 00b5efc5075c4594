"""The plan leaving the workstation: PDF, DICOM SR and SEG, Slicer markups, STL meshes, and
Send to a PACS or the angio suite; and a segmentation coming in as the anatomy.

Why apart from the workspace: each of these asks the user where (a file dialog, the DICOM
node, de-identify or not), then runs one background task on the controller with the plan,
the checks the window already shows and the C-arm set-up on screen, so the report says
what the screen says (the level assessment on screen, not one made again). The workspace
only offers the actions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from app.fluoroscopy import Fluoroscopy
from app.settings import cement_fill_range
from planning.plan import Plan

if TYPE_CHECKING:
    from app.plan_session import PlanSession
    from app.shell import Shell

SEGMENTATION_FILTER = ("Segmentations (*.nii *.nii.gz *.dcm);;NIfTI label map (*.nii *.nii.gz);;"
                       "DICOM SEG (*.dcm);;All files (*)")
LABEL_TABLES = {"TotalSegmentator (total task)": "totalsegmentator",
                "VerSe (1–25 = C1–L6, 26 = sacrum)": "verse"}
EXPORT_KINDS = {  # kind: (suffix, file filter, what it is)
    "pdf": (".pdf", "PDF report (*.pdf)", "PDF report"),
    "sr": (".dcm", "DICOM SR (*.dcm)", "DICOM SR"),
    "seg": (".dcm", "DICOM SEG (*.dcm)", "DICOM segmentation"),
    "markups": (".mrk.json", "3D Slicer markups (*.mrk.json)", "Slicer markups"),
}


class PlanExports(QObject):
    """Export, send and import-segmentation actions of one workspace."""

    def __init__(self, shell: Shell, session: PlanSession, fluoro: Fluoroscopy,
                 plan_dir: Callable[[], str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shell, self.session, self.fluoro = shell, session, fluoro
        self.controller, self.document = session.controller, session.document
        self.settings, self.cases = session.settings, session.cases
        self._plan_dir = plan_dir
        self.source_node: str | None = None  # the PACS the open CT was retrieved from
        self.last_export: Any = None
        self.controller.task_succeeded.connect(self._on_task_done)

    def _status(self, text: str, ms: int) -> None:
        self.shell.statusBar().showMessage(text, ms)

    def planner(self) -> str:
        return str(self.settings.value("export/planner", ""))

    def dicom_node(self) -> str:
        """Where Send goes: the node set in Settings, else the DICOM PACS the CT came from
        (so the plan joins its study there)."""
        configured = str(self.settings.value("export/dicom_node", ""))
        if configured or not self.source_node or "://" in self.source_node:
            return configured
        return self.source_node

    def send_ct(self) -> bool:
        return str(self.settings.value("export/send_ct", "false")).lower() == "true"

    def _inputs(self) -> tuple[Any, Plan, dict[Any, Any], Any] | None:
        volume, plan = self.controller.volume, self.document.plan
        if volume is None or not plan.trajectories:
            self._status("Plan at least one needle before exporting.", 10000)
            return None
        return volume, plan, self.session.editor.results, self.controller.anatomy

    # ---- dialogs -----------------------------------------------------------------------
    def export_dialog(self, kind: str) -> None:
        """Export one file (PDF, SR, SEG, markups) chosen by the user, in the background."""
        if self._inputs() is None:
            return
        suffix, filt, what = EXPORT_KINDS[kind]
        if kind == "seg" and self.controller.anatomy is None:
            self._status("A segmentation needs the spine found (or imported) first.", 10000)
            return
        default = Path(self._plan_dir()) / f"vertebroplasty-plan{suffix}"
        path, _ = QFileDialog.getSaveFileName(self.shell, f"Export {what}", str(default), filt)
        if not path:
            return
        target = Path(path if path.lower().endswith(suffix) else path + suffix)
        deid = kind != "markups" and QMessageBox.question(  # markups carry no identifiers
            self.shell, "De-identify?",
            "Remove the patient's identifiers (for a teaching file)?",
            QMessageBox.StandardButton.No | QMessageBox.StandardButton.Yes,
        ) == QMessageBox.StandardButton.Yes
        self.export(**{f"{kind}_path": target}, deidentify=deid)

    def export_meshes_dialog(self) -> None:
        """STL meshes of bone, canal, vertebrae and needles into a folder the user picks."""
        if self._inputs() is None:
            return
        folder = QFileDialog.getExistingDirectory(self.shell, "Export meshes (STL) into",
                                                  self._plan_dir())
        if folder:
            self.export(mesh_dir=Path(folder))

    def send_dialog(self) -> None:
        if self._inputs() is None:
            return
        node = self.dicom_node()
        if not node:
            node, ok = QInputDialog.getText(
                self.shell, "Send to PACS / angio suite",
                "DICOM node (AE title@host:port), e.g. ANGIO@10.0.0.12:104:")
            if not ok or not node.strip():
                return
            node = node.strip()
            self.settings.setValue("export/dicom_node", node)
        self.export(send_to=node, send_ct=self.send_ct())

    def import_segmentation_dialog(self) -> None:
        """A label map or DICOM SEG as the anatomy; a NIfTI map's codes need their table."""
        if self.controller.volume is None:
            self._status("Open the CT first, then its segmentation.", 10000)
            return
        path, _ = QFileDialog.getOpenFileName(self.shell, "Import segmentation as anatomy",
                                              self._plan_dir(), SEGMENTATION_FILTER)
        if not path:
            return
        table = "totalsegmentator"
        if path.lower().endswith((".nii", ".nii.gz")):
            other = "Another table (JSON file)…"
            choice, ok = QInputDialog.getItem(
                self.shell, "Label table", "What do the label map's codes mean?",
                [*LABEL_TABLES, other], 0, False)
            if not ok:
                return
            if choice == other:
                table, _ = QFileDialog.getOpenFileName(self.shell, "Label table",
                                                       str(Path(path).parent),
                                                       "JSON (*.json);;All files (*)")
                if not table:
                    return
            else:
                table = LABEL_TABLES[choice]
        self.controller.import_segmentation(path, table)

    # ---- the background task -----------------------------------------------------------
    def export(self, *, pdf_path: Path | None = None, sr_path: Path | None = None,
               seg_path: Path | None = None, markups_path: Path | None = None,
               mesh_dir: Path | None = None, send_to: str | None = None,
               send_ct: bool = False, deidentify: bool = False) -> bool:
        """Start one export in the background; False if there is nothing to export."""
        inputs = self._inputs()
        if inputs is None:
            return False
        volume, plan, results, anatomy = inputs
        # the report prints the level assessment the window shows; only while that is
        # being redone (the needles just moved) does the export assess them itself
        assessment = self.session.assessment_of_plan()
        from app.export_job import ExportRequest, export_plan
        from planning.interop.study_uids import with_export_uids

        # a CT without Study / Series UIDs: one new study, made now and kept in the plan
        # (saved with it), so every export of this plan is filed together
        plan, changed = with_export_uids(plan, volume)
        if changed:
            self.document.edit(plan, "File the exports in a new study (the CT has no UIDs)")

        request = ExportRequest(pdf_path=pdf_path, sr_path=sr_path, send_to=send_to,
                                deidentify=deidentify, planner=self.planner(),
                                fluoro_setup=self.fluoro.setup,
                                fill_range=cement_fill_range(self.settings),
                                seg_path=seg_path, markups_path=markups_path,
                                mesh_dir=mesh_dir, send_ct=send_ct)
        surface = self.controller.surface
        attenuation = self.fluoro.attenuation_for(volume)
        what = "sending the plan" if send_to else "exporting the plan"
        return self.controller.run_task(
            "Sending the plan…" if send_to else "Exporting the plan…", what,
            lambda progress: export_plan(volume, plan, results, anatomy, request, progress,
                                         surface=surface, attenuation=attenuation,
                                         assessment=assessment))

    def _on_task_done(self, _action: str, report: Any) -> None:
        parts = [f"Written {p.name}" for p in getattr(report, "written", [])]
        parts += [f"Sent: {s}" for s in getattr(report, "sent", [])]
        self._status(" · ".join(parts) or "Export finished.", 30000)
        self.last_export = report
        self.cases.plan_exported(None if self.document.is_dirty else self.document.path,
                                 sent=bool(getattr(report, "sent", None)))
