"""What the slices and the 3D view show besides the CT: needles, the canal, the selected
vertebra, the cement preview and the contrast-filled vessels near a needle.

Why a presenter: the same values go to five views (three slices, 3D, fluoroscopy) and the
needle view, some of them costly to build (a vertebra's surface, the vessels around a
needle), so they are built once here, kept while they stay valid, and handed to the views;
the views only draw. During a drag the 3D view, whose frame takes 0.1–0.5 s without a GPU,
follows when the mouse pauses (`flush_3d`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtGui import QColor

from planning.anatomy.model import Anatomy
from planning.checks import CheckResult
from planning.mask_reslice import Mesh, mask_mesh
from planning.triangle_mesh import empty_mesh, merge_meshes
from planning.vocabulary import CANAL_COLOR, CEMENT_COLOR, HIGHLIGHT_COLOR, VESSEL_COLOR
from widgets.mpr_overlays import Outline
from widgets.plan_display import NeedleDisplay

if TYPE_CHECKING:
    from app.plan_session import PlanSession
    from app.shell import Shell

LIVE_3D_MAX_S = 0.04  # 3D frames slower than this do not follow every move of a drag
VESSEL_SHOW_MM = 10.0  # a needle this close to a contrast-filled vessel shows the vessel
VESSEL_BOX_MM = 30.0  # the part of the vessel shown: around the needle, this far


class ScenePresenter:
    """The overlays of one window's views, built from the controller's anatomy, the plan
    and the level assessment."""

    def __init__(self, shell: Shell, session: PlanSession) -> None:
        self.shell, self.controller = shell, session.controller
        self.document, self.assessment = session.document, session.assessment
        # level, its surface and its mask (both made once per level and anatomy)
        self._highlight: tuple[str, Mesh | None, Any] | None = None
        self._highlight_shown: Mesh | None = None  # what the 3D view shows now
        self._cement_mesh: tuple[Any, Mesh] | None = None
        self._vessels_near: tuple[tuple[int, ...], Outline | None] = ((), None)
        self._vessels_3d: Any = None  # vessels waiting for the 3D view (a drag's pause)
        self._pending_3d: list[NeedleDisplay] = []

    @property
    def highlighted_level(self) -> str | None:
        return None if self._highlight is None else self._highlight[0]

    # ---- a new CT, a new anatomy -------------------------------------------------------
    def clear(self) -> None:
        """A new CT: nothing of the previous one's anatomy stays on screen."""
        shell = self.shell
        self._highlight = self._highlight_shown = None
        for view in shell.mpr_views:
            view.set_outlines([])
            view.set_level_marks({})
        shell.view3d.show_canal(*empty_mesh())
        shell.view3d.show_highlight(*empty_mesh())
        shell.view3d.show_level_labels({})
        shell.needle_view.set_canal(None, None)

    def show_anatomy(self, anatomy: Anatomy) -> None:
        """Level marks, the canal (slices, 3D, needle view); a highlight of a level this
        anatomy has not is dropped, one it has is rebuilt on its new mask."""
        shell = self.shell
        marks = {n: g.centroid_lps for n, g in anatomy.levels.items()}
        for view in shell.mpr_views:
            view.set_level_marks(marks)
        shell.view3d.show_level_labels(marks)
        mesh = self.controller.canal_mesh
        if mesh is not None:
            shell.view3d.show_canal(*mesh)
        shell.needle_view.set_canal(anatomy.canal, anatomy.affine_lps)
        level = self.highlighted_level
        self._highlight = None if level is None or level not in anatomy.levels else (
            level, None, None)
        self.refresh_outlines()

    # ---- needles -----------------------------------------------------------------------
    def show_needles(self, needles: list[NeedleDisplay], dragging: bool) -> bool:
        """The needles in every view; False when the 3D view waits for the drag to pause
        (the caller then calls `flush_3d` at the pause)."""
        shell = self.shell
        for view in shell.mpr_views:
            view.set_needles(needles)
        # without a GPU a 3D frame takes ~0.1–0.5 s: while a needle is dragged, the slices,
        # the needle view and the checks follow every move, and the 3D view follows when
        # the mouse pauses (or at once where frames are fast)
        self._pending_3d = needles
        live = not dragging or shell.view3d.last_render_s <= LIVE_3D_MAX_S
        if live:
            shell.view3d.show_needles(needles)
        shell.needle_view.set_needle(next((n for n in needles if n.selected), None))
        shell.fluoro_panel.set_needles(needles)
        return live

    def flush_3d(self) -> None:
        """The 3D view catches up with the needles and the vessels near them (a drag
        paused or ended)."""
        self.shell.view3d.show_needles(self._pending_3d)
        if self._vessels_3d is not None:
            keep, affine = self._vessels_3d
            self._vessels_3d = None
            self.shell.view3d.show_vessels(*mask_mesh(keep, affine))

    # ---- outlines ----------------------------------------------------------------------
    def set_highlight(self, level: str | None) -> None:
        """Outline ``level``'s vertebra in the slices and show it in 3D (None: no level)."""
        anatomy = self.controller.anatomy
        if level is None or anatomy is None or level not in anatomy.levels:
            self._highlight = None
        elif self._highlight is None or self._highlight[0] != level:
            self._highlight = (level, None, None)
        self.refresh_outlines()

    def refresh_outlines(self) -> None:
        """Canal outline in every slice; the selected vertebra outlined and shown in 3D."""
        anatomy = self.controller.anatomy
        view3d = self.shell.view3d
        outlines: list[Outline] = []
        if anatomy is not None:
            outlines.append(Outline("canal", anatomy.canal, anatomy.affine_lps,
                                    QColor(CANAL_COLOR), 1.8, fill_alpha=40))
        shown: Mesh | None = None
        if anatomy is not None and self._highlight is not None:
            level, mesh, mask = self._highlight
            if mask is None:
                mask = anatomy.vertebra_mask(level)
            outlines.append(Outline(f"vertebra:{level}", mask, anatomy.affine_lps,
                                    QColor(HIGHLIGHT_COLOR), 1.4))
            if mesh is None:
                mesh = mask_mesh(mask, anatomy.affine_lps, step_vox=2)
            self._highlight = (level, mesh, mask)
            shown = mesh
        # the 3D view only when its highlight changes: every render costs a 3D frame, and
        # this runs on every move of a drag near a vessel
        if shown is not self._highlight_shown:
            view3d.show_highlight(*(shown if shown is not None else empty_mesh()))
            self._highlight_shown = shown
        outlines += self._cement_preview()
        if self._vessels_near[1] is not None:
            outlines.append(self._vessels_near[1])
        for view in self.shell.mpr_views:
            view.set_outlines(outlines)

    def show_vessels_near(self, results: dict[Any, CheckResult], dragging: bool = False
                          ) -> None:
        """The contrast-filled vessels the checks found in the CT, drawn in the slices and
        in 3D around every needle that comes within `VESSEL_SHOW_MM` of one; cleared when
        none does. Recomputed only when the set of boxes changes (a drag that stays near
        a vessel moves the box a voxel at a time). While a needle is dragged the slices
        follow every move and the 3D view the pause (`flush_3d`), as for the needles: a
        surface and a 3D frame on every move had doubled a drag's latency near the aorta."""
        ctx = self.controller.check_context
        evidence = None if ctx is None else ctx.evidence
        near = [t for t in self.document.plan.trajectories
                if (r := results.get(t.key)) is not None and r.vessel_clearance_mm is not None
                and r.vessel_clearance_mm < VESSEL_SHOW_MM]
        if evidence is None or not near:
            if self._vessels_near[1] is not None:
                self._vessels_near = ((), None)
                self._vessels_3d = None
                self.shell.view3d.show_vessels(*empty_mesh())
                self.refresh_outlines()
            return
        vessels = evidence.vessels
        mask = vessels.lumen | vessels.wall_calcium
        inv = np.linalg.inv(vessels.affine_lps)
        keep = np.zeros(mask.shape, dtype=bool)
        boxes = []
        for t in near:
            ends = np.array([t.entry_lps, t.target_lps]) @ inv[:3, :3].T + inv[:3, 3]
            reach = VESSEL_BOX_MM / float(np.linalg.norm(vessels.affine_lps[:3, 0]))
            lo = np.maximum(np.floor(ends.min(axis=0) - reach).astype(int), 0)
            hi = np.minimum(np.ceil(ends.max(axis=0) + reach).astype(int) + 1,
                            mask.shape[::-1])
            box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
            keep[box] = mask[box]
            boxes += [*lo, *hi]
        key = tuple(int(b) for b in boxes)
        if key == self._vessels_near[0]:
            return
        outline = Outline("vessels", keep, vessels.affine_lps, QColor(VESSEL_COLOR), 1.6,
                          fill_alpha=60)
        self._vessels_near = (key, outline)
        if dragging:
            self._vessels_3d = (keep, vessels.affine_lps)
        else:
            self._vessels_3d = None
            self.shell.view3d.show_vessels(*mask_mesh(keep, vessels.affine_lps))
        self.refresh_outlines()

    def _cement_preview(self) -> list[Outline]:
        """The selected level's cement spread (one ellipsoid per tip, clipped to the body)
        in 3D, and its outlines for the slices; cleared where there is none."""
        anatomy = self.controller.anatomy
        level = self.highlighted_level
        found = self.assessment.result.get(level) if level is not None else None
        cement = None if found is None else found.cement
        if anatomy is None or cement is None or not cement.spreads:
            if self._cement_mesh is not None:  # cleared once, not re-rendered on every call
                self._cement_mesh = None
                self.shell.view3d.show_cement(*empty_mesh())
            return []
        if self._cement_mesh is None or self._cement_mesh[0] is not cement:
            parts = [mask_mesh(s.mask, anatomy.affine_lps) for s in cement.spreads]
            self._cement_mesh = (cement, merge_meshes(parts))
            self.shell.view3d.show_cement(*self._cement_mesh[1])
        return [Outline(f"cement:{level}:{i}", s.mask, anatomy.affine_lps,
                        QColor(CEMENT_COLOR), 1.2, fill_alpha=70)
                for i, s in enumerate(cement.spreads)]
