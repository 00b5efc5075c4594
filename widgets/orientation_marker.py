"""The 3-D view's orientation marker: a cube lettered with the six patient directions,
inside axes labelled L, P and S in LPS.

Kept apart from `view3d` (the scene, its layers, the camera and the mouse) so each stays
small; the marker is built once and never changes.
"""

from __future__ import annotations

from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor, vtkAxesActor
from vtkmodules.vtkRenderingCore import vtkPropAssembly

# the patient direction each cube face and axis faces (LPS: +x L, +y P, +z S), with the
# axis colours
CUBE_FACES = {"x": ("L", "R", (0.95, 0.36, 0.36)), "y": ("P", "A", (0.40, 0.85, 0.45)),
              "z": ("S", "I", (0.45, 0.62, 1.0))}


def orientation_marker(font_scale: float) -> vtkPropAssembly:
    """Axes labelled L, P, S around a cube lettered with all six patient directions, as
    radiology viewers use: from any side the letters say which is the patient's left,
    which a bare axis tripod leaves to be worked out. ``font_scale``: device pixels per
    logical pixel, for the axis captions."""
    cube = vtkAnnotatedCubeActor()
    for axis, (plus, minus, _color) in CUBE_FACES.items():
        getattr(cube, f"Set{axis.upper()}PlusFaceText")(plus)
        getattr(cube, f"Set{axis.upper()}MinusFaceText")(minus)
        for sign in ("Plus", "Minus"):
            text = getattr(cube, f"Get{axis.upper()}{sign}FaceProperty")()
            text.SetColor(1.0, 1.0, 1.0)
            text.SetInterpolationToFlat()
    cube.SetFaceTextScale(0.7)
    cube.GetCubeProperty().SetColor(0.30, 0.34, 0.40)
    cube.GetTextEdgesProperty().SetColor(1.0, 1.0, 1.0)
    cube.GetTextEdgesProperty().SetLineWidth(1.0)
    axes = vtkAxesActor()
    axes.SetTotalLength(1.25, 1.25, 1.25)
    axes.SetShaftTypeToCylinder()
    axes.SetCylinderRadius(0.03)
    axes.SetConeRadius(0.45)
    for axis, caption in zip("XYZ", (axes.GetXAxisCaptionActor2D(),
                                    axes.GetYAxisCaptionActor2D(),
                                    axes.GetZAxisCaptionActor2D()), strict=True):
        axes_key = axis.lower()
        getattr(axes, f"Set{axis}AxisLabelText")(CUBE_FACES[axes_key][0])
        getattr(axes, f"Get{axis}AxisShaftProperty")().SetColor(*CUBE_FACES[axes_key][2])
        getattr(axes, f"Get{axis}AxisTipProperty")().SetColor(*CUBE_FACES[axes_key][2])
        text = caption.GetCaptionTextProperty()
        text.SetColor(*CUBE_FACES[axes_key][2])
        text.SetFontSize(int(15 * font_scale))
        text.SetBold(True)
        text.SetItalic(False)
        text.SetShadow(True)
        caption.GetTextActor().SetTextScaleModeToNone()
    marker = vtkPropAssembly()
    marker.AddPart(cube)
    marker.AddPart(axes)
    return marker
