"""The demo CT: a synthetic thoracolumbar spine CT (T10–L5) with ground truth.

Why synthetic: the app, its tests and its screenshots need a realistic spine CT that can
be shipped and regenerated anywhere, whose anatomy is known exactly (level names, centroids,
pedicle axes, which level is fractured). The phantom is deterministic: a fixed seed, fixed
UIDs, fixed patient data.

What it shows: T10 … L5 with natural curvature (mild thoracic kyphosis, lumbar lordosis,
and a 35 % anterior wedge compression fracture of L1), partial T9 above and the top of the
sacrum below; ribs on T9–T12 only (T12 is the last rib-bearing vertebra); discs, the spinal
canal with dural sac and cord; the trunk with fat, paraspinal and psoas muscles, the aorta
on the patient's left, the IVC on the right, kidneys, liver, spleen, lung bases and bowel.
Then a slight blur (partial volume) and correlated noise (SD ≈ 15 HU).

Geometry: LPS mm; i towards the patient's left, j towards posterior, k towards superior;
320 × 320 pixels of 0.78125 mm (a 250 mm spine-centred field of view), 1 mm slices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid
from scipy import ndimage

from planning.demo.anatomy_specs import PLANNED_LEVELS
from planning.demo.canvas import Canvas
from planning.demo.shapes import Box, FloatArray, Grid
from planning.demo.soft_tissue import (
    Tracks,
    paint_kidneys,
    paint_muscles,
    paint_trunk_wall,
    paint_upper_abdomen,
    paint_vessels,
)
from planning.demo.spine_layout import SPINE_CENTRE_LPS, SpineLayout, build_spine_layout
from planning.demo.spine_painting import (
    build_models,
    paint_canal,
    paint_discs,
    paint_rib_sheaths,
    paint_ribs,
    paint_vertebra,
)
from planning.demo.truth import DemoTruth, LevelTruth, PedicleTruth
from planning.demo.vertebra_model import PART_BODY, VertebraModel
from planning.io.dicom_write import write_series
from planning.progress import Progress, no_progress
from planning.volume import PatientInfo, Volume

SEED = 20240611
PIXELS = 320
PIXEL_MM = 250.0 / PIXELS
SLICE_MM = 1.0
FOV_CENTRE_BEHIND_SPINE_MM = -12.0  # FOV centre relative to the spine's mean body centre (y)
MARGIN_ABOVE_T10_MM = 9.0
MARGIN_BELOW_S1_MM = 20.0
BLUR_SIGMA_VOXELS = 0.5
NOISE_SD_BEFORE_BLUR_HU = 28.0  # ≈ 14.5 HU after the blur, spatially correlated
SLAB = 32

SERIES_DESCRIPTION = "VertebroPlan demo spine"
DEMO_PATIENT = PatientInfo(
    name="VertebroPlan^Demo",
    patient_id="VP-DEMO-0001",
    birth_date="19500101",
    sex="F",
    study_date="20240611",
    study_time="093000",
    study_description="Demo thoracolumbar spine CT (synthetic)",
    series_description=SERIES_DESCRIPTION,
    accession_number="VPDEMO0001",
    study_id="1",
    institution="VertebroPlan (synthetic data)",
)


def demo_uids() -> dict[str, str]:
    """Study, Series and Frame of Reference UIDs, the same on every run (for caches/tests)."""
    def uid(what: str) -> str:
        return str(generate_uid(entropy_srcs=["vertebroplan-demo-v1", what]))

    return {"study_uid": uid("study"), "series_uid": uid("series"),
            "frame_of_reference_uid": uid("frame-of-reference")}


def make_grid(layout: SpineLayout) -> Grid:
    """A spine-centred axial grid from just above T10 to just below the S1 endplate."""
    t10 = layout.vertebra("T10")
    l5s1 = layout.disc_below("L5")
    assert l5s1 is not None
    z_top = t10.frame.origin_lps[2] + 0.5 * t10.spec.central_height_mm + MARGIN_ABOVE_T10_MM
    z_bottom = l5s1.frame.origin_lps[2] - 0.5 * l5s1.spec.height_mm - MARGIN_BELOW_S1_MM
    z0 = np.floor(z_bottom * 2.0) / 2.0
    nk = int(np.ceil((z_top - z0) / SLICE_MM)) + 1
    half = 0.5 * (PIXELS - 1) * PIXEL_MM
    centre_y = SPINE_CENTRE_LPS[1] + FOV_CENTRE_BEHIND_SPINE_MM
    origin = np.array([SPINE_CENTRE_LPS[0] - half, centre_y - half, z0])
    return Grid((nk, PIXELS, PIXELS), origin, np.array([PIXEL_MM, PIXEL_MM, SLICE_MM]))


def _exit_point(canvas: Canvas, code: int, start_lps: FloatArray, direction: FloatArray,
                step_mm: float = 0.25, max_mm: float = 120.0) -> FloatArray:
    """The last point along a ray from ``start`` that is still inside label ``code``."""
    ts = np.arange(0.0, max_mm, step_mm)
    pts = start_lps + ts[:, None] * direction
    ijk = np.rint(canvas.grid.to_index(pts)).astype(int)
    nk, nj, ni = canvas.grid.shape
    ok = ((ijk >= 0) & (ijk < np.array([ni, nj, nk]))).all(axis=1)
    inside = np.zeros(ts.size, dtype=bool)
    inside[ok] = canvas.labels[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]] == code
    outside = np.nonzero(~inside)[0]
    last = (outside[0] - 1) if outside.size else ts.size - 1
    return pts[max(int(last), 0)]


def measure_level(canvas: Canvas, model: VertebraModel, box: Box) -> LevelTruth:
    """Ground truth of one painted level, taken from the design and the painted labels."""
    spec, frame = model.spec, model.pose.frame
    sl = box.slices
    body = (canvas.labels[sl] == spec.code) & (canvas.parts[sl] == PART_BODY)
    k, j, i = np.nonzero(body)
    ijk = np.stack([i + box.lo[2], j + box.lo[1], k + box.lo[0]], axis=1).astype(np.float64)
    centroid = canvas.grid.origin_lps + ijk.mean(axis=0) * canvas.grid.spacing_mm
    pedicles = []
    for p in model.arch.pedicles:
        isthmus = frame.to_lps(p.isthmus_local)
        d = frame.vector_to_lps(p.direction_local)
        pedicles.append(PedicleTruth(
            side=p.side,  # type: ignore[arg-type]
            isthmus_lps=isthmus,
            direction_lps=d,
            isthmus_width_mm=p.width_mm,
            isthmus_height_mm=p.height_mm,
            entry_lps=_exit_point(canvas, spec.code, isthmus, -d),
            anterior_cortex_lps=_exit_point(canvas, spec.code, isthmus, d),
        ))
    r = frame.rotation
    return LevelTruth(
        name=spec.name, label_code=spec.code, centroid_lps=centroid,
        superior_lps=r[:, 2].copy(), anterior_lps=-r[:, 1], left_lps=r[:, 0].copy(),
        body_width_mm=spec.body_width_mm, body_depth_mm=spec.body_depth_mm,
        anterior_height_mm=spec.anterior_height_mm,
        posterior_height_mm=spec.posterior_height_mm,
        fractured=spec.fractured, has_ribs=spec.has_ribs,
        pedicles=(pedicles[0], pedicles[1]),
    )


def add_noise_and_blur(hu: np.ndarray, seed: int, progress: Progress, done: int,
                       total: int) -> None:
    """Blur (partial volume) and correlated noise, in place, slab by slab.

    Why slabs: a float copy of the whole volume would double the memory. Each slice's noise
    comes from its own seeded generator, so a slice gets the same noise whichever slab (or
    halo) it is read in, and the result does not depend on the slab size.
    """
    nk = hu.shape[0]
    halo = 3
    tail: np.ndarray | None = None

    def noisy(clean: np.ndarray, k0: int) -> np.ndarray:
        out = clean.astype(np.float32)
        for n in range(out.shape[0]):
            rng = np.random.default_rng([seed, k0 + n])
            out[n] += NOISE_SD_BEFORE_BLUR_HU * rng.standard_normal(out.shape[1:],
                                                                     dtype=np.float32)
        return out

    for k0 in range(0, nk, SLAB):
        k1 = min(k0 + SLAB, nk)
        hi = min(k1 + halo, nk)
        parts = [noisy(hu[k0:hi], k0)]
        lo = k0
        if tail is not None:
            lo = k0 - tail.shape[0]
            parts.insert(0, noisy(tail, lo))
        block = np.concatenate(parts, axis=0)
        tail = hu[max(k1 - halo, 0):k1].copy()
        out = ndimage.gaussian_filter(block, BLUR_SIGMA_VOXELS, mode="nearest", truncate=3.0)
        hu[k0:k1] = np.clip(np.rint(out[k0 - lo:k1 - lo]), -1024, 3071).astype(np.int16)
        progress.report(done, total, f"Image noise ({k1}/{nk} slices)")


def generate_demo_ct(progress: Progress | None = None) -> tuple[Volume, DemoTruth]:
    """Build the demo CT and its ground truth (deterministic; ~60 MB of int16).

    ``progress.report`` is called between stages and may raise `Cancelled`.
    """
    progress = progress or no_progress()
    rng = np.random.default_rng(SEED)
    layout = build_spine_layout()
    grid = make_grid(layout)
    models = build_models(layout)
    total = 8 + len(models)
    step = 0

    def report(message: str) -> None:
        nonlocal step
        progress.report(step, total, message)
        step += 1

    report("Laying out the trunk")
    canvas = Canvas.empty(grid)
    tracks = Tracks(layout, canvas)
    paint_trunk_wall(canvas, tracks)
    report("Abdominal organs")
    paint_upper_abdomen(canvas, tracks, rng)
    paint_kidneys(canvas, tracks)
    report("Muscles and vessels")
    paint_muscles(canvas, tracks)
    paint_vessels(canvas, tracks)
    paint_rib_sheaths(canvas, models)
    report("Spinal canal and discs")
    paint_canal(canvas, layout, models)
    paint_discs(canvas, layout, models)
    report("Ribs")
    paint_ribs(canvas, models, rng)
    boxes: dict[str, Box] = {}
    for m in models:
        report(f"Vertebra {m.spec.name}")
        box = paint_vertebra(canvas, m, rng)
        if box is not None:
            boxes[m.spec.name] = box
    report("Measuring the ground truth")
    levels = tuple(measure_level(canvas, m, boxes[m.spec.name]) for m in models
                   if m.spec.name in PLANNED_LEVELS)
    truth = DemoTruth(levels, canvas.labels, canvas.parts, grid.affine_lps)
    report("Image noise")
    add_noise_and_blur(canvas.hu, SEED, progress, step, total)
    uids = demo_uids()
    volume = Volume(
        array=canvas.hu, affine_lps=grid.affine_lps, modality="CT", patient=DEMO_PATIENT,
        source="VertebroPlan demo CT (synthetic)", study_uid=uids["study_uid"],
        series_uid=uids["series_uid"], frame_of_reference_uid=uids["frame_of_reference_uid"],
    )
    progress.report(total, total, "Demo CT ready")
    return volume, truth


def write_demo_ct(out_dir: str | Path, progress: Progress | None = None) -> DemoTruth:
    """Generate the demo CT and write it as a DICOM series plus ground truth into ``out_dir``.

    Files: one ``IM*.dcm`` per slice, ``ground_truth.json`` (levels, centroids, axes,
    pedicle axes, LPS mm) and ``ground_truth_labels.npz`` (labels, parts, affine_lps).
    """
    volume, truth = generate_demo_ct(progress)
    if progress is not None:
        progress.report(0, 1, "Writing the DICOM series")
    write_series(volume, out_dir, series_description=SERIES_DESCRIPTION)
    truth.save(out_dir)
    if progress is not None:
        progress.report(1, 1, "Demo CT written")
    return truth


def load_demo_truth(out_dir: str | Path) -> DemoTruth:
    """Read the ground truth that `write_demo_ct` wrote next to the series."""
    return DemoTruth.load(out_dir)
