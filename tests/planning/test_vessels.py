"""Contrast-filled vessels are found in the CT, are never bone, and keep needles away.

Truth comes from phantoms painted from the shared real label maps (`painted_cases`), where
the vessels are exactly what was painted, and from the shared contrast thorax CT (aorta with
a stent graft), whose descending aorta was read by eye on axial slices (z 699 and 729 mm:
a round lumen of ~465 HU to the patient's left of the vertebral body).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from planning.anatomy.from_ct import anatomy_from_ct
from planning.autoplan import propose
from planning.checks import CheckContext
from planning.io import load_path
from planning.volume import Volume
from tests.planning import painted_cases as pc
from tests.planning.regrid import oblique_grid, regrid

THORAX = pc.DATA / "ct-thorax-1p5mm" / "ct.nii.gz"
THORAX_AORTA_LPS = np.array([[27.8, -110.2, 699.3], [22.1, -117.6, 729.2]])


def _plan(ct: Volume):
    anatomy = anatomy_from_ct(ct)
    ctx = CheckContext.build(ct, anatomy)
    return anatomy, ctx, propose(ct, anatomy, ctx)


@pytest.fixture(scope="module")
def abdomen():
    return pc.abdomen_phantom()


def test_painted_truth_vessels_lie_beside_the_bodies(abdomen) -> None:
    ph = abdomen
    assert ph.vessels.any()
    assert not (ph.vessels & (ph.labels.array > 0)).any()  # labels: on the CT's grid
    # the aorta on the patient's left (+x), the cava on the right, both in front of the spine
    k = ph.ct.array.shape[0] * 3 // 4
    _jj, ii = np.nonzero(ph.vessels[k])
    x = ph.ct.affine_lps[0, 3] + ii * ph.ct.spacing_mm[0]
    spine_x = ph.anatomy.levels["L1"].centroid_lps[0]
    assert (x > spine_x + 5).any() and (x < spine_x - 5).any()


@pytest.mark.parametrize("variant", ["as painted", "oblique 20°/12°, 2 mm"])
def test_phantom_vessels_found_and_never_bone(abdomen, variant: str) -> None:
    ph = abdomen
    ct = ph.ct
    if variant != "as painted":
        ct = regrid(ct, *oblique_grid(ct, 20.0, 12.0, 2.0))
    anatomy, _, proposal = _plan(ct)
    vm = anatomy.vessels
    assert vm is not None and vm.found
    inside = pc.truth_vessel_points(ph)
    assert pc.fraction_in(vm.lumen, vm.affine_lps, inside) >= 0.9
    # no painted lumen became vertebra (but a few voxels of blur), little bone became vessel
    assert pc.fraction_in(anatomy.labels > 0, anatomy.affine_lps, inside) < 0.005
    k, j, i = np.nonzero(vm.lumen)
    found = np.stack([i, j, k], 1).astype(float) @ vm.affine_lps[:3, :3].T + vm.affine_lps[:3, 3]
    truth = ph.anatomy  # bone more than 3 mm inside a vertebra (its edge is a voxel's blur)
    deep = ndimage.binary_erosion(truth.labels > 0, iterations=2)
    assert pc.fraction_in(deep, truth.affine_lps, found) < 0.005
    # every automatic needle ≥ 3 mm from the painted vessels, its tip in its body
    field = pc.vessel_truth_field(ph)
    assert len(proposal.plan.trajectories) >= 4
    for t in proposal.plan.trajectories:
        assert pc.vessel_clearance_mm(field, t) >= 3.0, t.label
        assert pc.tip_in_truth_body(ph, t, anatomy), t.label
        assert proposal.results[t.key].vessel_clearance_mm >= 3.0


def test_no_contrast_no_vessels() -> None:
    ph = pc.abdomen_phantom(contrast=False)
    assert not anatomy_from_ct(ph.ct).vessels.found


@pytest.mark.parametrize("name", ["ct-abdomen-3mm", "ct-verse012-sagittal"])
def test_real_ct_without_contrast_has_no_vessels(name: str) -> None:
    path = pc.DATA / name / "ct.nii.gz"
    if not path.exists():
        pytest.skip("shared data absent")
    anatomy = anatomy_from_ct(load_path(path))
    assert not anatomy.vessels.found
    assert not any("Contrast-filled" in w for w in anatomy.warnings)


@pytest.fixture(scope="module")
def thorax():
    if not Path(THORAX).exists():
        pytest.skip("shared data absent")
    ct = load_path(THORAX)
    return (ct, *_plan(ct))


def test_thorax_aorta_is_vessel_not_vertebra(thorax) -> None:
    _ct, anatomy, _, _ = thorax
    vm = anatomy.vessels
    assert vm.found and vm.wall_calcium.any()  # the stent graft's struts
    assert pc.fraction_in(vm.lumen, vm.affine_lps, THORAX_AORTA_LPS) == 1.0
    assert pc.fraction_in(anatomy.labels > 0, anatomy.affine_lps, THORAX_AORTA_LPS) == 0.0
    # the vessel takes no vertebra with it: its voxels a voxel inside its edge hold no
    # vertebra label (at the edge, a 2 mm voxel of lumen and the CT's bone meet)
    k, j, i = np.nonzero(ndimage.binary_erosion(vm.lumen))
    pts = np.stack([i, j, k], 1).astype(float) @ vm.affine_lps[:3, :3].T + vm.affine_lps[:3, 3]
    assert pc.fraction_in(anatomy.labels > 0, anatomy.affine_lps, pts) < 0.002


def test_thorax_proposals_clear_of_vessels_with_bone_around_the_tip(thorax) -> None:
    _, _, _, proposal = thorax
    assert proposal.plan.trajectories
    for t in proposal.plan.trajectories:
        res = proposal.results[t.key]
        assert res.vessel_clearance_mm is not None and res.vessel_clearance_mm >= 3.0
        assert res.tip_walled_directions is not None and res.tip_walled_directions >= 12
        assert res.approach == "transpedicular"


def test_thorax_bodies_stop_short_of_the_stent_graft(thorax) -> None:
    """The stent graft's struts blur into a ring of bone-like HU around the aorta. Before
    its wall was kept out of bone, T7's body took the ring and the aneurysm sac between
    (its centre 8–9 mm towards the aorta, T4 and T6 pulled too); now every body's centre
    lies within a few millimetres of the line through its neighbours', and no body voxel
    lies on the graft's wall."""
    _ct, anatomy, _, _ = thorax
    names = list(anatomy.levels)
    x = {n: float(anatomy.levels[n].centroid_lps[0]) for n in names}
    inner = names[1:-1]
    for before, name, after in zip(names, inner, names[2:], strict=False):
        assert abs(x[name] - 0.5 * (x[before] + x[after])) < 4.0, (name, x)
    vm = anatomy.vessels
    k, j, i = np.nonzero(vm.wall_calcium)
    pts = np.stack([i, j, k], 1).astype(float) @ vm.affine_lps[:3, :3].T + vm.affine_lps[:3, 3]
    assert pc.fraction_in(anatomy.bodies, anatomy.affine_lps, pts) < 0.01


def test_a_stent_grafts_wall_is_the_vessels_and_a_bare_lumens_is_not() -> None:
    """A contrast-filled tube, once with metal struts on its wall and once without: only
    the stented one has a shell of `GRAFT_WALL_MM` around its lumen flagged as the
    vessel's wall, so a bare aorta lying against a body leaves the body's cortex alone."""
    from planning.vessels import GRAFT_WALL_MM, METAL_HU, find_vessels

    s = 2.0
    shape = (40, 50, 50)
    kk, jj, ii = np.indices(shape)
    radius = np.sqrt((ii - 25.0) ** 2 + (jj - 25.0) ** 2)
    for struts in (True, False):
        hu = np.full(shape, 40.0, dtype=np.float32)
        hu[radius <= 6] = 350.0  # the lumen, 24 mm across
        if struts:
            angle = np.degrees(np.arctan2(jj - 25.0, ii - 25.0)) % 45.0
            wires = (np.abs(radius - 6.5) < 0.5) & (angle < 8.0) & (kk % 5 == 0)
            hu[wires] = METAL_HU + 500.0  # eight struts round, every 10 mm
        vm = find_vessels(hu, np.diag([s, s, s, 1.0]), s)
        assert vm.found
        outside = vm.wall_calcium & (radius > radius[vm.lumen].max() + 0.5)
        if struts:
            reach = radius[outside].max() - radius[vm.lumen].max()
            assert reach >= GRAFT_WALL_MM / s - 1.0
        else:
            assert not outside.any()
