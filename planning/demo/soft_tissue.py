"""The trunk around the spine: skin, fat, muscles, vessels, kidneys and the upper abdomen.

Soft tissues follow the spine's sagittal curve: each is laid slice by slice relative to a
"track" (the spine centre line pushed forwards or backwards along each segment's
anteroposterior axis) or placed as an ellipsoid next to a given level. Sidedness is that of
a real patient: the aorta and spleen on the left (+x), the IVC and liver on the right.
HU values are those of a portal-venous-phase abdominal CT.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from planning.demo.anatomy_specs import LEVEL_SPECS
from planning.demo.canvas import Canvas
from planning.demo.shapes import AxialProfile, Box, Ellipsoid, F32Array, FloatArray, Frame
from planning.demo.spine_layout import SpineLayout

BoolArray = NDArray[np.bool_]

HU_AIR = -1000
HU_FAT = -100
HU_VISCERAL_FAT = -90
HU_MUSCLE = 50
HU_AORTA = 165
HU_IVC = 135
HU_LIVER = 105
HU_SPLEEN = 112
HU_KIDNEY_CORTEX = 170
HU_KIDNEY_MEDULLA = 125
HU_LUNG = -860
HU_BOWEL_WALL = 55
HU_BOWEL_CONTENT = 22

LABEL_AORTA = 110
LABEL_IVC = 111
LABEL_KIDNEY_LEFT = 112
LABEL_KIDNEY_RIGHT = 113
LABEL_LIVER = 114
LABEL_SPLEEN = 115


class Tracks:
    """Per-slice positions along the spine (LPS mm), one entry per slice of the grid."""

    def __init__(self, layout: SpineLayout, canvas: Canvas) -> None:
        self.layout = layout
        self.z = canvas.grid.z_of_slices()
        self.n = self.z.size

    def y(self, posterior_mm: float) -> FloatArray:
        return self.layout.track(self.z, posterior_mm)[0]

    def per_level(self, values: dict[str, float]) -> FloatArray:
        return self.layout.interp_by_level(self.z, values)

    def spec_value(self, attr: str) -> FloatArray:
        return self.per_level({s.name: float(getattr(s, attr)) for s in LEVEL_SPECS})

    def z_of(self, name: str) -> float:
        return float(self.layout.vertebra(name).frame.origin_lps[2])

    def profile(self, canvas: Canvas, cx: FloatArray | float, cy: FloatArray,
                hx: FloatArray | float, hy: FloatArray | float, exponent: float = 2.0,
                posterior_hy: FloatArray | float | None = None) -> AxialProfile:
        def arr(v: FloatArray | float) -> FloatArray:
            return np.broadcast_to(np.asarray(v, dtype=np.float64), (self.n,)).copy()

        return AxialProfile(canvas.grid, 0, arr(cx), arr(cy), arr(hx), arr(hy), exponent,
                            None if posterior_hy is None else arr(posterior_hy))


def _ellipsoid(centre: FloatArray | list[float], radii: tuple[float, float, float],
               yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> Ellipsoid:
    """An ellipsoid turned by yaw (about z), pitch (about x) and roll (about y), degrees."""
    cz, sz = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    cx, sx = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
    cy, sy = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return Ellipsoid(Frame(np.asarray(centre, dtype=np.float64), rz @ rx @ ry), radii)


def paint_trunk_wall(canvas: Canvas, t: Tracks) -> None:
    """Body outline with subcutaneous fat, the muscular wall, and visceral fat inside."""
    skin_y = t.y(100.0)
    lumbar = t.per_level({"T10": 0.0, "L1": 1.0})
    half_x = 150.0 + 10.0 * lumbar
    back, front = 112.0, 125.0
    cy = skin_y - back
    canvas.fill(t.profile(canvas, 0.0, cy, half_x, front, 2.6, back), HU_FAT)
    canvas.fill(t.profile(canvas, 0.0, cy, half_x - 22, front - 16, 2.6, back - 13),
                HU_MUSCLE)
    canvas.fill(t.profile(canvas, 0.0, cy, half_x - 32, front - 26, 2.6, back - 21),
                HU_VISCERAL_FAT)


def paint_upper_abdomen(canvas: Canvas, t: Tracks, rng: np.random.Generator) -> None:
    """Liver (right), spleen and stomach (left), lung bases and bowel loops."""
    yb = {n: float(t.layout.vertebra(n).frame.origin_lps[1]) for n in ("T10", "T11", "L3")}
    z11 = t.z_of("T11")
    canvas.fill(_ellipsoid([-88.0, yb["T11"] - 45.0, z11 + 20.0], (95.0, 80.0, 85.0),
                           yaw_deg=-10.0), HU_LIVER, LABEL_LIVER)
    canvas.fill(_ellipsoid([88.0, yb["T11"] + 8.0, z11 + 8.0], (26.0, 50.0, 55.0),
                           yaw_deg=-35.0), HU_SPLEEN, LABEL_SPLEEN)
    stomach = _ellipsoid([52.0, yb["T10"] - 95.0, t.z_of("T10") - 5.0], (48.0, 40.0, 50.0))
    found = canvas.fill(stomach, HU_BOWEL_CONTENT)
    if found is not None:
        box, mask = found
        _, y, _ = canvas.grid.axes(box)
        gas = mask & (y < np.float32(stomach.frame.origin_lps[1] - 22.0))
        canvas.fill_mask(box, gas, HU_AIR)
    _paint_bowel(canvas, t, rng, yb["L3"])
    _paint_lung_bases(canvas, t)


def _paint_bowel(canvas: Canvas, t: Tracks, rng: np.random.Generator, y_body: float) -> None:
    """Random small-bowel and colon loops in front of the retroperitoneum, with some gas.

    Loops are painted only inside the abdominal cavity (where visceral fat is, before any
    bowel), so none pokes through the muscular wall or the skin.
    """
    cavity = canvas.hu == HU_VISCERAL_FAT

    def paint(shape: Ellipsoid, hu: float | F32Array) -> tuple[Box, BoolArray] | None:
        found = canvas.region(shape)
        if found is None:
            return None
        box, mask = found
        mask = mask & cavity[box.slices]
        canvas.fill_mask(box, mask, hu)
        return box, mask

    z_top, z_bottom = t.z_of("L1"), t.z_of("S1")
    for _ in range(46):
        r = float(rng.uniform(9.0, 17.0))
        centre = [float(rng.uniform(-110, 110)), float(y_body - rng.uniform(70, 140)),
                  float(rng.uniform(z_bottom, z_top))]
        loop = _ellipsoid(centre, (r, r * rng.uniform(0.7, 1.0), r * rng.uniform(1.0, 2.0)),
                          yaw_deg=float(rng.uniform(0, 180)), pitch_deg=float(
                              rng.uniform(-40, 40)))
        paint(loop, HU_BOWEL_WALL)
        paint(loop.grown(-2.5), HU_BOWEL_CONTENT + float(rng.uniform(-10, 15)))
        if rng.uniform() < 0.3:
            c = loop.frame.origin_lps + np.array([0.0, -0.5 * r, 0.0])
            g = float(rng.uniform(2.5, 5.0))
            paint(_ellipsoid(c, (g * 1.4, g, g * 1.2)), HU_AIR)
    for sx, x in ((1.0, 102.0), (-1.0, -100.0)):  # descending (left) and ascending colon
        for k in range(6):
            z = z_top - 10.0 - k * (z_top - z_bottom) / 6.0
            c = [x + 4.0 * sx * math.sin(k), y_body - 35.0 - 6.0 * k, z]
            seg = _ellipsoid(c, (17.0, 15.0, 20.0))
            paint(seg, HU_BOWEL_WALL)
            inner = canvas.region(seg.grown(-2.0))
            if inner is not None:
                box, mask = inner
                mask = mask & cavity[box.slices]
                stool = rng.standard_normal(box.shape).astype(np.float32)
                hu = np.where(stool > 1.3, np.float32(-950.0), np.float32(-20.0) + 60 * stool)
                canvas.fill_mask(box, mask, hu)


def _paint_lung_bases(canvas: Canvas, t: Tracks) -> None:
    """The posterior costophrenic recesses: lung behind the liver and spleen, above the
    diaphragm, reaching down to about T12 next to the spine."""
    z10 = t.z_of("T10")
    y10 = float(t.layout.vertebra("T10").frame.origin_lps[1])
    for sx in (1.0, -1.0):
        lung = _ellipsoid([sx * 72.0, y10 + 22.0, z10 + 12.0], (46.0, 48.0, 70.0),
                          pitch_deg=30.0)
        canvas.fill(lung.grown(4.0), HU_MUSCLE)  # diaphragm and pleura
        found = canvas.region(lung)
        if found is not None:
            box, mask = found
            x, _, _ = canvas.grid.axes(box)
            mask &= np.abs(x) > np.float32(24.0)
            canvas.fill_mask(box, mask, HU_LUNG)


def paint_kidneys(canvas: Canvas, t: Tracks) -> None:
    """Kidneys in their perirenal fat: left at T12–L2, right ~2 cm lower; upper poles
    medial and posterior; cortex brighter than medulla; fat in the renal sinus."""
    z1 = t.z_of("L1")
    for sx, dz, label in ((1.0, -6.0, LABEL_KIDNEY_LEFT), (-1.0, -24.0, LABEL_KIDNEY_RIGHT)):
        z = z1 + dz
        yb = float(t.layout.track(np.array([z]), 0.0)[0][0])
        kidney = _ellipsoid([sx * 74.0, yb + 2.0, z], (24.0, 17.0, 52.0),
                            yaw_deg=sx * 25.0, pitch_deg=-12.0, roll_deg=-sx * 14.0)
        canvas.fill(kidney.grown(10.0), HU_FAT)
        found = canvas.region(kidney)
        if found is None:
            continue
        box, mask = found
        axes = canvas.grid.axes(box)
        val = kidney.value(axes)
        lx, ly, lz = kidney.frame.local_axes(axes)
        hu = np.where(val > 0.55, np.float32(HU_KIDNEY_CORTEX), np.float32(HU_KIDNEY_MEDULLA))
        medial = -sx * lx  # towards the hilum
        sinus = ((medial - 12.0) / 11.0) ** 2 + (ly / 8.0) ** 2 + (lz / 22.0) ** 2 <= 1.0
        pelvis = ((medial - 17.0) / 7.0) ** 2 + (ly / 5.0) ** 2 + (lz / 9.0) ** 2 <= 1.0
        hu = np.where(sinus, np.float32(-70.0), hu)
        hu = np.where(pelvis, np.float32(12.0), hu)
        canvas.fill_mask(box, mask, hu, label)


def paint_muscles(canvas: Canvas, t: Tracks) -> None:
    """Psoas, quadratus lumborum, erector spinae and multifidus, diaphragmatic crura."""
    half_w = 0.5 * t.spec_value("body_width_mm")
    psoas = t.per_level({"T11": -6.0, "T12": 3.0, "L1": 8.0, "L2": 12.0, "L3": 16.0,
                         "L4": 19.0, "L5": 21.0, "S1": 20.0})
    ql = t.per_level({"T12": -4.0, "L1": 10.0, "L2": 15.0, "L3": 17.0, "L4": 14.0,
                      "L5": -3.0})
    tp = t.spec_value("transverse_tip_mm")
    y0 = t.y(0.0)
    crus = t.per_level({"T10": 4.0, "L1": 5.0, "L2": 3.0, "L3": -1.0})
    for sx in (1.0, -1.0):
        canvas.fill(t.profile(canvas, sx * (half_w + 0.75 * psoas), y0 + 2.0, psoas,
                              0.85 * psoas), HU_MUSCLE)
        canvas.fill(t.profile(canvas, sx * (tp + 10.0), t.y(22.0), ql, 0.5 * ql), HU_MUSCLE)
        canvas.fill(t.profile(canvas, sx * (half_w - 6.0), t.y(-14.0), crus, 2.2 * crus),
                    HU_MUSCLE)
        erector = t.profile(canvas, sx * 37.0, t.y(60.0), 34.0, 27.0, 2.2, 28.0)
        canvas.fill(erector, HU_MUSCLE + 3)


def paint_vessels(canvas: Canvas, t: Tracks) -> None:
    """Aorta anterior-left of the spine down to its bifurcation at L4, IVC on the right."""
    z = t.z
    z4 = t.z_of("L4") + 4.0
    above = z >= z4
    r_ao = t.per_level({"T9": 11.5, "L1": 10.5, "L3": 9.5, "L4": 8.5})
    x_ao = t.per_level({"T9": 11.0, "T12": 12.0, "L2": 14.0, "L4": 14.0})
    y_ao = t.y(-16.0) - r_ao - 2.0
    canvas.fill(t.profile(canvas, x_ao, y_ao, np.where(above, r_ao, -1.0), r_ao),
                HU_AORTA, LABEL_AORTA)
    below = np.clip(z4 - z, 0.0, None)
    r_il = np.where(above, -1.0, 6.0)
    for dx in (0.55, -0.75):
        canvas.fill(t.profile(canvas, 12.0 + dx * below, y_ao - 0.15 * below, r_il, r_il),
                    HU_AORTA, LABEL_AORTA)
    z11 = t.z_of("T11")
    ivc_on = (z <= z11) & (z >= t.z_of("L5"))
    hx = np.where(ivc_on, 12.0, -1.0)
    canvas.fill(t.profile(canvas, -t.per_level({"T11": 20.0, "L3": 22.0, "L5": 18.0}),
                          t.y(-16.0) - 10.0, hx, 8.5), HU_IVC, LABEL_IVC)
    zl5 = t.z_of("L5")
    below5 = np.clip(zl5 - z, 0.0, None)
    r_v = np.where(z < zl5, 7.0, -1.0)
    for dx in (0.7, -0.5):
        canvas.fill(t.profile(canvas, -12.0 + dx * below5, t.y(-16.0) - 6.0, r_v, r_v),
                    HU_IVC, LABEL_IVC)
    _paint_calcified_plaques(canvas, x_ao, y_ao, r_ao, above)


def _paint_calcified_plaques(canvas: Canvas, x_ao: FloatArray, y_ao: FloatArray,
                             r_ao: FloatArray, present: FloatArray | BoolArray) -> None:
    """A few small wall calcifications of an elderly patient's aorta (posterior wall)."""
    ks = np.nonzero(present)[0]
    if ks.size == 0:
        return
    z = canvas.grid.z_of_slices()
    for frac, ang in ((0.55, 200.0), (0.7, 250.0), (0.85, 300.0), (0.93, 230.0)):
        k = int(ks[int(frac * (ks.size - 1))])
        a = math.radians(ang)
        c = [x_ao[k] + (r_ao[k] - 1.0) * math.cos(a), y_ao[k] - (r_ao[k] - 1.0) * math.sin(a),
             z[k]]
        canvas.fill(_ellipsoid(c, (1.6, 1.3, 2.5)), 600.0, LABEL_AORTA)

