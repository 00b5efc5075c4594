"""Paint the spine into the canvas: canal contents, discs, ribs and vertebrae.

Bone gets its cortex from a distance transform of each bone's own mask (so the shell is
~1 mm thick everywhere, also where parts join), and a trabecular texture that is elongated
along z as the vertical trabeculae of a vertebral body are. The fractured body gets a band
of impacted, denser trabeculae under its collapsed superior endplate.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from planning.demo.canvas import Canvas
from planning.demo.shapes import Box, EllipticCapsule, F32Array
from planning.demo.spine_layout import SpineLayout
from planning.demo.vertebra_model import (
    PART_BODY,
    PART_RIB,
    SIDES,
    VertebraModel,
    build_disc,
    build_rib,
    build_vertebra,
    canal_segments,
)

HU_CORTEX_BODY = 1200.0
HU_CORTEX_ARCH = 1300.0
HU_CANCELLOUS_BODY = 190.0
HU_CANCELLOUS_ARCH = 320.0
HU_FRACTURE_BAND = 200.0  # added to cancellous bone under the collapsed endplate
HU_RIB_CORTEX = 1150.0
HU_RIB_MARROW = 260.0
HU_DISC_NUCLEUS = 80.0
HU_DISC_ANNULUS = 100.0
HU_CSF = 8.0
HU_CORD = 34.0
HU_EPIDURAL_FAT = -70.0
HU_LIGAMENT = 62.0
HU_MUSCLE = 50.0
CORTEX_BODY_MM = 1.15
CORTEX_ARCH_MM = 2.0

LABEL_CANAL = 100
LABEL_DISC = 101
LABEL_RIB = 102


def texture(rng: np.random.Generator, shape: tuple[int, int, int]) -> F32Array:
    """Unit-variance trabecular texture, smoother along z (slices 1 mm) than in-plane."""
    t = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), (1.3, 0.8, 0.8))
    return t / np.float32(max(float(t.std()), 1e-6))


def build_models(layout: SpineLayout) -> list[VertebraModel]:
    return [build_vertebra(layout, v.name) for v in layout.vertebrae]


def paint_canal(canvas: Canvas, layout: SpineLayout, models: list[VertebraModel]) -> None:
    """Ligamentum flavum behind the canal, then the canal (epidural fat), the dural sac
    (CSF) and the cord down to its conus at L1; all inside the canal carry its label."""
    segs = [canal_segments(layout, m) for m in models]
    for key, hu, label in (("flavum", HU_LIGAMENT, 0), ("canal", HU_EPIDURAL_FAT, LABEL_CANAL),
                           ("sac", HU_CSF, LABEL_CANAL), ("cord", HU_CORD, LABEL_CANAL)):
        for s in segs:
            if key in s:
                canvas.fill(s[key], hu, label)


def paint_discs(canvas: Canvas, layout: SpineLayout, models: list[VertebraModel]) -> None:
    """Discs between consecutive bodies: softer nucleus, firmer annulus."""
    for upper, lower in itertools.pairwise(models):
        disc = build_disc(layout, upper, lower)
        found = canvas.region(disc)
        if found is None:
            continue
        box, mask = found
        sec = disc.section_value(canvas.grid.axes(box))
        hu = np.where(sec < 0.45, np.float32(HU_DISC_NUCLEUS), np.float32(HU_DISC_ANNULUS))
        canvas.fill_mask(box, mask, hu, LABEL_DISC)


def _ribs(models: list[VertebraModel]) -> list[list[EllipticCapsule]]:
    return [build_rib(m.pose, m.arch, sx) for m in models if m.spec.has_ribs for _, sx in SIDES]


def _rib_field(canvas: Canvas, caps: list[EllipticCapsule]) -> tuple[Box, F32Array] | None:
    """The smallest normalised radial value of a rib's tubes per voxel (≤ 1 inside)."""
    pairs = [(c, b) for c in caps if (b := canvas.grid.box_around(*c.bounds_lps(), 4.0))]
    if not pairs:
        return None
    box = pairs[0][1]
    for _, b in pairs[1:]:
        box = box.union(b)
    val = np.full(box.shape, np.inf, dtype=np.float32)
    for cap, b in pairs:
        v = cap.value(canvas.grid.axes(b))
        view = val[b.within(box)]
        np.minimum(view, v, out=view)
    return box, val


def paint_rib_sheaths(canvas: Canvas, models: list[VertebraModel]) -> None:
    """Intercostal muscle around each rib (painted before the bone)."""
    for caps in _ribs(models):
        found = _rib_field(canvas, caps)
        if found is not None:
            box, val = found
            canvas.fill_mask(box, val <= 2.4, HU_MUSCLE)


def paint_ribs(canvas: Canvas, models: list[VertebraModel], rng: np.random.Generator) -> None:
    """Rib bone: a cortical tube around marrow."""
    for caps in _ribs(models):
        found = _rib_field(canvas, caps)
        if found is None:
            continue
        box, val = found
        tex = texture(rng, box.shape)
        hu = np.where(val > 0.36, HU_RIB_CORTEX + 60 * tex, HU_RIB_MARROW + 40 * tex)
        canvas.fill_mask(box, val <= 1.0, hu, LABEL_RIB, PART_RIB)


def rasterize_parts(canvas: Canvas, model: VertebraModel) -> tuple[Box, np.ndarray] | None:
    """Part codes of one vertebra over its bounding box (0 = not this bone)."""
    grid = canvas.grid
    boxes = [grid.box_around(*shape.bounds_lps(), 2.0) for _, shape in model.parts]
    valid = [b for b in boxes if b is not None]
    if not valid:
        return None
    box: Box = valid[0]
    for b in valid[1:]:
        merged = box.union(b)
        assert merged is not None  # the union of two boxes on one grid always exists
        box = merged
    pm = np.zeros(box.shape, dtype=np.uint8)
    for (code, shape), bb in zip(model.parts, boxes, strict=True):
        if bb is None:
            continue
        m = shape.inside(grid.axes(bb))
        pm[bb.within(box)][m] = code
    return box, pm


def paint_vertebra(canvas: Canvas, model: VertebraModel, rng: np.random.Generator) -> Box | None:
    """Paint one vertebra with cortex, cancellous texture and (if fractured) the impaction
    band; returns the box it occupies."""
    found = rasterize_parts(canvas, model)
    if found is None:
        return None
    box, pm = found
    bone = pm > 0
    sp = canvas.grid.spacing_mm
    depth = ndimage.distance_transform_edt(bone, sampling=(sp[2], sp[1], sp[0]))
    body = pm == PART_BODY
    cortex = bone & (depth <= np.where(body, CORTEX_BODY_MM, CORTEX_ARCH_MM))
    del depth
    tex = texture(rng, box.shape)
    hu = np.where(body, HU_CANCELLOUS_BODY + 45 * tex, HU_CANCELLOUS_ARCH + 50 * tex)
    lx, ly, lz = model.pose.frame.local_axes(canvas.grid.axes(box))
    if model.spec.fractured:
        below_top = model.body.top_z(lx, ly) - lz
        band = body & (below_top < 6.0) & (tex > -1.2)
        hu = np.where(band, hu + HU_FRACTURE_BAND * np.clip(1.0 - below_top / 6.0, 0.3, 1.0),
                      hu)
    hu = np.where(cortex, np.where(body, HU_CORTEX_BODY, HU_CORTEX_ARCH) + 70 * tex, hu)
    half_d = 0.5 * model.spec.body_depth_mm
    basivertebral = body & (np.abs(lx) < 2.2) & (np.abs(lz) < 1.5) & (ly > half_d - 9.0)
    hu = np.where(basivertebral, np.float32(70.0), hu)
    sl = box.slices
    canvas.hu[sl][bone] = np.clip(np.rint(hu[bone]), -1024, 3071).astype(np.int16)
    canvas.labels[sl][bone] = model.spec.code
    canvas.parts[sl][bone] = pm[bone]
    return box
