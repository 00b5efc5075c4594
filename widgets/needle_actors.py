"""The VTK objects that draw one needle in the 3-D view, and the view's 2-D labels.

Kept apart from `view3d` (the scene, its layers, the camera and the mouse) so each stays
small. A needle is a tube with a ghost seen through the bone, a halo when selected, an entry
and a tip handle and a label; all are updated in place, so a redraw during a drag costs
microseconds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PySide6.QtGui import QColor
from vtkmodules.vtkFiltersCore import vtkTubeFilter
from vtkmodules.vtkFiltersSources import vtkLineSource, vtkSphereSource
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkCoordinate,
    vtkPolyDataMapper,
    vtkProp,
    vtkTextActor,
)

from planning.volume import FloatArray
from widgets.plan_display import NeedleDisplay

NEEDLE_SIDES = 20  # facets of a needle tube: round at any zoom, 80 triangles a needle
GHOST_OPACITY = 0.6  # the part of a needle hidden by bone, seen through it
NEEDLE_AMBIENT = 0.4  # a thin tube is mostly lit at grazing angles: keep its colour true
HALO_OPACITY = 0.35
HALO_EXTRA_MM = 1.4  # the selected needle's halo is this much wider than the needle
HANDLE_SCALE, HANDLE_MIN_EXTRA_MM = 1.7, 0.9  # handle radius: ≥ 1.7 × and ≥ +0.9 mm
HANDLE_ENTRY_COLOR = (0.97, 0.97, 0.97)
LABEL_GAP_PX = 6.0  # a needle's label sits on its axis' screen extension, this far past the handle


def vtk_rgb(color: QColor | str) -> tuple[float, float, float]:
    """A Qt colour (or its name) as VTK's 0–1 RGB."""
    c = QColor(color)
    return (c.redF(), c.greenF(), c.blueF())


def label_text(font_px: int, color: tuple[float, float, float]) -> vtkTextActor:
    """A bold 2-D label on a dark backing, readable over bone, canal and background. 2-D
    text is drawn after all 3-D geometry, so bone never hides it."""
    text = vtkTextActor()
    prop = text.GetTextProperty()
    prop.SetFontSize(font_px)
    prop.SetColor(*color)
    prop.SetBold(True)
    prop.SetShadow(True)
    prop.SetBackgroundColor(0.05, 0.06, 0.08)
    prop.SetBackgroundOpacity(0.55)
    prop.SetVerticalJustificationToCentered()
    return text


def world_label(font_px: int, color: tuple[float, float, float]) -> tuple[vtkTextActor,
                                                                          vtkCoordinate]:
    """A label centred on a world point, which is set on the returned coordinate."""
    anchor = vtkCoordinate()
    anchor.SetCoordinateSystemToWorld()
    text = label_text(font_px, color)
    text.GetTextProperty().SetJustificationToCentered()
    position = text.GetPositionCoordinate()
    position.SetCoordinateSystemToDisplay()
    position.SetReferenceCoordinate(anchor)
    position.SetValue(0.0, 0.0, 0.0)
    return text, anchor


class NeedleActors:
    """The VTK objects of one drawn needle, updated in place on every redraw.

    One line source feeds the tube and its halo; the solid tube (layer 0) and its ghost
    (x-ray layer) share one mapper. A redraw during a drag only moves two points and two
    handles, so it costs microseconds instead of rebuilding a pipeline.
    """

    def __init__(self, name: str, font_px: int) -> None:
        self.name = name
        self.line = vtkLineSource()
        self.tube, mapper = _tube(self.line)
        self.solid = vtkActor()
        self.solid.SetMapper(mapper)
        self.ghost = vtkActor()
        self.ghost.SetMapper(mapper)
        self.ghost.GetProperty().SetOpacity(GHOST_OPACITY)
        self.ghost.GetProperty().BackfaceCullingOn()
        for actor in (self.solid, self.ghost):  # colour reads as the status at any angle
            actor.GetProperty().SetAmbient(NEEDLE_AMBIENT)
            actor.GetProperty().SetDiffuse(1.0 - NEEDLE_AMBIENT)
            actor.GetProperty().SetSpecular(0.3)
            actor.GetProperty().SetSpecularPower(30.0)
        self.halo_tube, halo_mapper = _tube(self.line)
        self.halo = vtkActor()
        self.halo.SetMapper(halo_mapper)
        self.halo.GetProperty().SetColor(1.0, 1.0, 1.0)
        self.halo.GetProperty().SetOpacity(HALO_OPACITY)
        self.halo.GetProperty().BackfaceCullingOn()
        self.spheres: dict[str, vtkSphereSource] = {}
        self.handles: dict[str, vtkActor] = {}
        for part in ("entry", "target"):
            sphere = vtkSphereSource()
            sphere.SetThetaResolution(20)
            sphere.SetPhiResolution(14)
            handle_mapper = vtkPolyDataMapper()
            handle_mapper.SetInputConnection(sphere.GetOutputPort())
            handle = vtkActor()
            handle.SetMapper(handle_mapper)
            handle.GetProperty().SetSpecular(0.3)
            self.spheres[part], self.handles[part] = sphere, handle
        self.handles["entry"].GetProperty().SetColor(*HANDLE_ENTRY_COLOR)
        self.label = label_text(font_px, (1.0, 1.0, 1.0))
        self.label.GetPositionCoordinate().SetCoordinateSystemToDisplay()
        self._state: tuple[object, ...] | None = None
        self.handle_radius_mm = 0.0

    def overlay_props(self) -> dict[str, vtkProp]:
        """The x-ray layer's props by name, ghost first: translucent props are drawn in
        the order they were added, and a ghost must be drawn before the canal for the
        canal's depth test to show which is in front."""
        return {f"{self.name}:ghost": self.ghost, f"{self.name}:halo": self.halo,
                f"{self.name}:entry": self.handles["entry"],
                f"{self.name}:target": self.handles["target"],
                f"{self.name}:label": self.label}

    def set_path(self, entry_lps: FloatArray, target_lps: FloatArray) -> None:
        """Move the needle (tube, halo, handles, label) to a new entry and target, LPS mm."""
        entry = np.asarray(entry_lps, dtype=np.float64)
        target = np.asarray(target_lps, dtype=np.float64)
        self.line.SetPoint1(*entry)
        self.line.SetPoint2(*target)
        self.handles["entry"].SetPosition(*entry)
        self.handles["target"].SetPosition(*target)

    def place_label(self, entry_px: NDArray[np.float64], target_px: NDArray[np.float64],
                    handle_px: float) -> None:
        """Put the label past the entry handle on the screen line target → entry, VTK
        display pixels: outside the body, off the needle and its handle from any angle."""
        outward = entry_px[:2] - target_px[:2]
        length = float(np.hypot(*outward))
        outward = outward / length if length > 1.0 else np.array([1.0, 0.0])
        x, y = entry_px[:2] + outward * (handle_px + LABEL_GAP_PX)
        text = self.label.GetTextProperty()
        if abs(outward[0]) >= 0.5:  # mostly sideways: the text extends away from the needle
            text.SetJustification(0 if outward[0] > 0 else 2)  # left / right
            text.SetVerticalJustificationToCentered()
        else:  # mostly up or down: centred above or below the handle
            text.SetJustificationToCentered()
            text.SetVerticalJustification(0 if outward[1] > 0 else 2)  # bottom / top
        self.label.SetPosition(float(x), float(y))

    def update(self, needle: NeedleDisplay, editable: bool) -> None:
        """Draw ``needle``: path, radius, colour, selection, label; skip what is unchanged."""
        radius = float(needle.radius_mm)
        self.handle_radius_mm = max(radius * HANDLE_SCALE, radius + HANDLE_MIN_EXTRA_MM)
        self.set_path(needle.entry_lps, needle.target_lps)
        state = (radius, needle.color.name(), needle.selected, needle.label, editable)
        if state == self._state:
            return
        self._state = state
        self.tube.SetRadius(radius)
        self.halo_tube.SetRadius(radius + HALO_EXTRA_MM)
        for sphere in self.spheres.values():
            sphere.SetRadius(self.handle_radius_mm)
        color = QColor(needle.color)
        if needle.selected:
            color = color.lighter(135)
        rgb = vtk_rgb(color)
        self.solid.GetProperty().SetColor(*rgb)
        self.ghost.GetProperty().SetColor(*rgb)
        self.halo.SetVisibility(needle.selected)
        tip = 0.55 * np.array(rgb) + 0.45
        self.handles["target"].GetProperty().SetColor(*tip)
        for handle in self.handles.values():
            handle.SetVisibility(editable)
        self.label.SetInput(needle.label)
        text = self.label.GetTextProperty()
        text.SetColor(*vtk_rgb(QColor(needle.color).lighter(140)))


def _tube(line: vtkLineSource) -> tuple[vtkTubeFilter, vtkPolyDataMapper]:
    """A capped tube around ``line`` (its radius set later) and the mapper that draws it."""
    tube = vtkTubeFilter()
    tube.SetInputConnection(line.GetOutputPort())
    tube.SetNumberOfSides(NEEDLE_SIDES)
    tube.CappingOn()
    mapper = vtkPolyDataMapper()
    mapper.SetInputConnection(tube.GetOutputPort())
    return tube, mapper
