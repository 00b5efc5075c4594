"""The 3-D view's "x-ray" layer: a second renderer drawn over the bone with its own depth
buffer and the same camera, for what must be seen *through* the bone.

Kept apart from `view3d` so each stays small. Its props are kept by name, so showing a
structure again replaces it (see `view3d` for what goes in this layer and why).
"""

from __future__ import annotations

from vtkmodules.vtkCommonDataModel import vtkPolyData
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkCamera,
    vtkPolyDataMapper,
    vtkProp,
    vtkRenderer,
    vtkRenderWindow,
)


class XrayLayer:
    """Layer 1 of a render window whose layer 0 is ``main``: same camera, not interactive."""

    def __init__(self, ren_win: vtkRenderWindow, main: vtkRenderer) -> None:
        ren_win.SetNumberOfLayers(max(3, ren_win.GetNumberOfLayers()))
        self.renderer = vtkRenderer()
        self.renderer.SetLayer(1)
        self.renderer.SetInteractive(False)  # the camera style works on the main renderer
        self.renderer.SetActiveCamera(main.GetActiveCamera())
        ren_win.AddRenderer(self.renderer)
        self._props: dict[str, vtkProp] = {}

    def follow(self, camera: vtkCamera) -> None:
        """Share the main renderer's camera (pyvista may give it a new camera object)."""
        if self.renderer.GetActiveCamera() is not camera:
            self.renderer.SetActiveCamera(camera)

    def get(self, name: str) -> vtkProp | None:
        return self._props.get(name)

    def add(self, name: str, prop: vtkProp) -> None:
        """Add ``prop`` as ``name``, replacing what had that name."""
        self.remove(name)
        self.renderer.AddViewProp(prop)
        self._props[name] = prop

    def remove(self, name: str) -> None:
        prop = self._props.pop(name, None)
        if prop is not None:
            self.renderer.RemoveViewProp(prop)

    def move_to_end(self, names: tuple[str, ...]) -> None:
        """Re-add these props, so they are drawn after all others: translucent props are
        drawn in the order they were added."""
        for name in names:
            prop = self._props.get(name)
            if prop is not None:
                self.renderer.RemoveViewProp(prop)
                self.renderer.AddViewProp(prop)

    def show_surface(self, name: str, mesh: vtkPolyData, color: tuple[float, float, float],
                     opacity: float) -> None:
        """A translucent surface (with point normals). Back faces are culled: a translucent
        closed surface drawn without sorting would otherwise show its far wall through the
        near one in triangle order, a speckle that changes as the camera turns. An actor
        already shown under ``name`` keeps its colour and only gets the new mesh."""
        actor = self._props.get(name)
        mapper = actor.GetMapper() if isinstance(actor, vtkActor) else None
        if not isinstance(actor, vtkActor) or not isinstance(mapper, vtkPolyDataMapper):
            mapper = vtkPolyDataMapper()
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            prop = actor.GetProperty()
            prop.SetColor(*color)
            prop.SetOpacity(opacity)
            prop.BackfaceCullingOn()
            prop.SetInterpolationToGouraud()
            prop.SetSpecular(0.2)
            self.add(name, actor)
        mapper.SetInputData(mesh)

    def close(self, ren_win: vtkRenderWindow) -> None:
        """Empty the layer and take it out of the render window."""
        self.renderer.RemoveAllViewProps()
        ren_win.RemoveRenderer(self.renderer)
