"""The plan's actions in the window's menus and toolbar: File (plans, exports, send), Edit
(undo, redo, delete, settings), Plan, Training and the docks in View.

Why apart: the menus are a table of labels, shortcuts and tips that a surgeon reads; kept
in one place they read as one, and the workspace holds only what the actions do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QStyle, QToolButton

from planning.plan import Side

if TYPE_CHECKING:
    from app.controller import Controller
    from app.plan_document import PlanDocument
    from app.plan_editor import PlanEditor
    from app.plan_exports import PlanExports
    from app.plan_files import PlanFiles
    from app.shell import Shell
    from app.training_session import TrainingSession


class MenuHost(Protocol):
    """What the menus trigger: the plan workspace's parts and actions."""

    controller: Controller
    document: PlanDocument
    editor: PlanEditor
    files: PlanFiles
    exports: PlanExports
    training: TrainingSession
    levels_dock: QDockWidget
    help_dock: QDockWidget

    def propose_selected(self) -> None: ...
    def place(self, side: Side, level: str | None = None) -> None: ...
    def delete_selected(self) -> None: ...
    def show_settings(self) -> None: ...


@dataclass(frozen=True)
class PlanActions:
    """The actions other code needs by name (the undo stack's, whose labels change)."""

    undo: QAction
    redo: QAction


def install_plan_menus(w: Shell, ws: MenuHost) -> PlanActions:
    """Add the workspace's actions to ``w``'s menus and toolbar."""
    sp = QStyle.StandardPixmap
    stack = ws.document.undo_stack
    undo = stack.createUndoAction(w, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = stack.createRedoAction(w, "&Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    for a in (undo, redo):
        w.addAction(a)
    act, files, exports = w._action, ws.files, ws.exports
    open_plan = act("Open plan…", files.open_plan_dialog, "Ctrl+Shift+P",
                    sp.SP_DialogOpenButton, "Open a saved plan for this CT")
    save_plan = act("Save plan", files.save_plan, QKeySequence.StandardKey.Save,
                    sp.SP_DialogSaveButton, "Save the plan (Ctrl+S)")
    save_as = act("Save plan as…", files.save_plan_as, "Ctrl+Shift+S", None,
                  "Save the plan under a new name")
    propose = act("Propose", ws.propose_selected, "Ctrl+P", None,
                  "Propose bilateral trajectories for the selected levels")
    place_left = act("Place left needle", lambda: ws.place(Side.LEFT), "Shift+L", None,
                     "Click the entry, then the target (patient's left)")
    place_right = act("Place right needle", lambda: ws.place(Side.RIGHT), "Shift+R", None,
                      "Click the entry, then the target (patient's right)")
    delete = act("Delete needle", ws.delete_selected, QKeySequence.StandardKey.Delete,
                 sp.SP_TrashIcon, "Delete the selected needle")
    cancel = act("Cancel placing", ws.editor.cancel_placing, "Esc")
    settings = act("Settings…", ws.show_settings, "Ctrl+,", None,
                   "Default gauge and the checks' thresholds")
    find_spine = act("Find the spine again", ws.controller.find_anatomy, None, None,
                     "Run the automatic anatomy again")
    import_sr = act("Import plan from DICOM SR…", files.import_sr_dialog, None, None,
                    "Rebuild a plan from a VertebroPlan DICOM SR")
    export_pdf = act("Export PDF report…", lambda: exports.export_dialog("pdf"), "Ctrl+E",
                     None, "Write the plan as a PDF report")
    export_sr = act("Export DICOM SR…", lambda: exports.export_dialog("sr"), None, None,
                    "Write the plan as a DICOM Comprehensive 3D SR")
    send = act("Send to PACS / angio suite…", exports.send_dialog, None, None,
               "Send the plan (SR, segmentation, PDF report; the CT too if set in Settings) "
               "to the configured DICOM node")
    export_seg = act("Export DICOM SEG…", lambda: exports.export_dialog("seg"), None, None,
                     "Vertebrae, canal and needle paths as a DICOM Segmentation (OHIF, Slicer, "
                     "PACS)")
    export_markups = act("Export Slicer markups…", lambda: exports.export_dialog("markups"),
                         None, None, "Each needle as a 3D Slicer line (.mrk.json, LPS)")
    export_meshes = act("Export meshes (STL)…", exports.export_meshes_dialog, None, None,
                        "Bone, canal, vertebrae and needles as STL files in LPS mm "
                        "(3D printing)")
    import_seg = act("Import segmentation as anatomy…", exports.import_segmentation_dialog,
                     None, None,
                     "Use a label map (NIfTI: TotalSegmentator, VerSe) or a DICOM SEG as the "
                     "spine")

    menu = w.menuBar()
    file_menu = next(m.menu() for m in menu.actions() if m.text() == "&File")
    first = file_menu.actions()[-2]  # before the separator above Quit
    for a in (open_plan, save_plan, save_as, import_sr, import_seg):
        file_menu.insertAction(first, a)
    file_menu.insertSeparator(first)
    for a in (export_pdf, export_sr, export_seg, export_markups, export_meshes, send):
        file_menu.insertAction(first, a)
    edit_menu = menu.addMenu("&Edit")
    menu.insertMenu(menu.actions()[1], edit_menu)
    for a in (undo, redo):
        edit_menu.addAction(a)
    edit_menu.addSeparator()
    edit_menu.addAction(delete)
    edit_menu.addAction(cancel)
    edit_menu.addSeparator()
    edit_menu.addAction(settings)
    plan_menu = menu.addMenu("&Plan")
    menu.insertMenu(menu.actions()[3], plan_menu)
    for a in (propose, place_left, place_right, delete):
        plan_menu.addAction(a)
    plan_menu.addSeparator()
    plan_menu.addAction(find_spine)
    training = act("Training mode…", ws.training.show, "Ctrl+T", None,
                   "Practise on cases with a hidden reference plan, scored")
    training_menu = menu.addMenu("&Training")
    menu.insertMenu(menu.actions()[4], training_menu)
    training_menu.addAction(training)
    view_menu = next(m.menu() for m in menu.actions() if m.text() == "&View")
    view_menu.addSeparator()
    for dock in (ws.levels_dock, ws.help_dock):
        view_menu.addAction(dock.toggleViewAction())
    toolbar = w.toolbar
    toolbar.addSeparator()
    toolbar.addAction(save_plan)
    # undo/redo labels grow with the edit's name ("Undo Move L2 left target"): icons in
    # the toolbar, the full label in the tooltip and the Edit menu
    undo.setIcon(w.style().standardIcon(sp.SP_ArrowBack))
    redo.setIcon(w.style().standardIcon(sp.SP_ArrowForward))
    for a in (undo, redo):
        toolbar.addAction(a)
        button = toolbar.widgetForAction(a)
        if isinstance(button, QToolButton):
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    return PlanActions(undo, redo)
