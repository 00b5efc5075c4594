"""The report's off-screen 3-D picture: a PNG with the needles in their status colours, the
patient's left where the "L" is. Runs without a display (VTK falls back to EGL off-screen),
so it is not marked ``gui``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from planning.checks import Status
from planning.mask_reslice import mask_mesh
from planning.plan import Side
from planning.vocabulary import STATUS_COLORS
from widgets.plan_display import NeedleDisplay
from widgets.snapshot3d import CAMERA_FROM_FOCUS, render_level_snapshot, side_letters

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SIZE = (600, 450)


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


@pytest.fixture(scope="module")
def scene() -> dict[str, object]:
    """A ball of "bone" (r 15 mm at the origin), a tube of "canal" behind it, and a needle
    on each side outside the ball: the patient's left one safe, the right one unsafe."""
    k, j, i = np.indices((48, 48, 48))
    affine = np.eye(4)
    affine[:3, 3] = -23.5  # 1 mm voxels centred on LPS (0, 0, 0)
    ball = (i - 23.5) ** 2 + (j - 23.5) ** 2 + (k - 23.5) ** 2 < 15.0**2
    canal = ((i - 23.5) ** 2 + (j - 41.0) ** 2 < 4.0**2) & (k > 4) & (k < 43)
    left = NeedleDisplay("L1", Side.LEFT, np.array([28.0, 30.0, 6.0]),
                         np.array([14.0, -6.0, 2.0]), 1.5, Status.SAFE)
    right = NeedleDisplay("L1", Side.RIGHT, np.array([-28.0, 30.0, 6.0]),
                          np.array([-14.0, -6.0, 2.0]), 1.5, Status.UNSAFE)
    return {"bone": mask_mesh(ball, affine), "canal": mask_mesh(canal, affine),
            "left": left, "right": right}


def _render(scene: dict[str, object], needles: list[NeedleDisplay]) -> np.ndarray:
    vertices, faces, normals = scene["bone"]  # type: ignore[misc]
    png = render_level_snapshot(vertices, faces, normals, needles, np.zeros(3),
                                canal_mesh=scene["canal"], size=SIZE)  # type: ignore[arg-type]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    assert image.size == SIZE
    return np.asarray(image.convert("RGB"), dtype=float)


def _matches(pixels: np.ndarray, hex_color: str, tolerance: float = 30.0) -> np.ndarray:
    return np.linalg.norm(pixels - _rgb(hex_color), axis=-1) < tolerance


def test_needle_is_drawn_in_its_status_colour(scene) -> None:
    pixels = _render(scene, [scene["left"]])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(ARTIFACTS / "snapshot3d_one_needle.png")
    assert _matches(pixels, STATUS_COLORS[Status.SAFE]).sum() > 150
    assert _matches(pixels, STATUS_COLORS[Status.UNSAFE]).sum() == 0
    assert _matches(pixels, STATUS_COLORS[Status.CAUTION]).sum() == 0
    assert pixels.std() > 20.0  # a scene, not a blank frame


def test_left_needle_is_on_the_side_lettered_l(scene) -> None:
    pixels = _render(scene, [scene["left"], scene["right"]])
    Image.fromarray(pixels.astype(np.uint8)).save(ARTIFACTS / "snapshot3d_two_needles.png")
    green = np.argwhere(_matches(pixels, STATUS_COLORS[Status.SAFE]))
    red = np.argwhere(_matches(pixels, STATUS_COLORS[Status.UNSAFE]))
    assert len(green) > 150 and len(red) > 150
    # seen from behind, the patient's left is on the picture's left, where "L" is written
    assert green[:, 1].mean() < SIZE[0] / 2 < red[:, 1].mean()
    h = SIZE[1]
    left_edge = pixels[h // 3: 2 * h // 3, :40]
    right_edge = pixels[h // 3: 2 * h // 3, -40:]
    white = np.array([255.0, 255.0, 255.0])
    assert (np.linalg.norm(left_edge - white, axis=-1) < 30).sum() > 20  # the letter
    assert (np.linalg.norm(right_edge - white, axis=-1) < 30).sum() > 20


def test_side_letters_follow_the_camera() -> None:
    up = np.array([0.0, 0.0, 1.0])
    assert side_letters(CAMERA_FROM_FOCUS, up) == ("L", "R")  # from behind
    assert side_letters(np.array([0.0, -1.0, 0.0]), up) == ("R", "L")  # from the front
    assert side_letters(np.array([0.0, 1.0, 0.0]), -up) == ("R", "L")  # behind, upside down


def test_tiny_size_is_refused(scene) -> None:
    vertices, faces, normals = scene["bone"]
    with pytest.raises(ValueError, match="at least 16×16"):
        render_level_snapshot(vertices, faces, normals, [], np.zeros(3), size=(8, 8))


@pytest.mark.slow
def test_demo_report_with_snapshots(shared_demo_ct, tmp_path: Path) -> None:
    """The whole report as the workstation makes it: demo CT, automatic plan for three
    levels, slice images, a 3-D snapshot per level. Prints the time of each stage and
    saves the pages for a human to look at (tests/artifacts/report_page*_with_3d.png)."""
    import shutil
    import subprocess
    import time

    from planning.anatomy import anatomy_from_demo_truth
    from planning.autoplan import propose
    from planning.checks import CheckContext
    from planning.report.model import PlanReport
    from planning.report.pdf import write_pdf_report
    from planning.report.report_images import level_images
    from planning.surface import extract_bone_surface

    volume, truth = shared_demo_ct
    anatomy = anatomy_from_demo_truth(truth)
    ctx = CheckContext.build(volume, anatomy)
    proposal = propose(volume, anatomy, ctx, ["T12", "L1", "L2"])
    plan, results = proposal.plan, proposal.results
    bone = extract_bone_surface(volume)
    canal = mask_mesh(anatomy.canal, anatomy.affine_lps)

    start = time.perf_counter()
    images = {lv: level_images(volume, plan, results, anatomy, lv) for lv in plan.levels}
    after_images = time.perf_counter()
    snapshots = {}
    for lv in plan.levels:
        needles = [NeedleDisplay(t.level, t.side, t.entry, t.target, t.radius_mm,
                                 results[t.key].status) for t in plan.trajectories
                   if t.level == lv]
        focus = np.mean([p for n in needles for p in (n.entry_lps, n.target_lps)], axis=0)
        snapshots[lv] = render_level_snapshot(*bone, needles, focus, canal_mesh=canal)
    after_snapshots = time.perf_counter()
    path = write_pdf_report(tmp_path / "report.pdf", PlanReport(
        plan, results, volume, images, snapshots=snapshots, planner="Test",
        software_version="test", fluoroscopy=None))  # (the DRR pages: report/test_pdf.py)
    end = time.perf_counter()
    print(f"\n3 levels: images {after_images - start:.2f} s, 3-D snapshots "
          f"{after_snapshots - after_images:.2f} s, PDF {end - after_snapshots:.2f} s, "
          f"total {end - start:.2f} s")
    assert path.stat().st_size > 50_000
    if shutil.which("pdftoppm") is None:
        return
    subprocess.run(["pdftoppm", "-r", "110", "-png", str(path), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2 + len(plan.levels)  # summary, C-arm views, a page a level
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for n, page in enumerate(pages, start=1):
        shutil.copy(page, ARTIFACTS / f"report_page{n}_with_3d.png")
    # the snapshot sits left under the slices, and shows the needles' green
    level_page = np.asarray(Image.open(pages[2]).convert("RGB"), dtype=float)
    assert _matches(level_page, STATUS_COLORS[Status.SAFE]).sum() > 500
