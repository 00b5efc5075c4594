"""One vertebra of the demo spine as a set of implicit parts, plus its ribs and canal.

Every position here is first stated in the vertebra's local frame (x = left, y = posterior,
z = superior, mm, origin at the body centre; ``sx`` = +1 for the patient's left side, −1
for the right) and then moved to LPS by the vertebra's frame. The parts follow the shape
of a real vertebra: body, two oval pedicles converging towards the midline, laminae
closing the canal behind, spinous and transverse processes, superior and inferior
articular processes meeting their neighbours' at facet joints with a 1.5 mm joint space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planning.demo.anatomy_specs import LevelSpec
from planning.demo.shapes import EllipticCapsule, FloatArray, Frame, Shape
from planning.demo.spine_layout import SpineLayout, VertebraPose
from planning.demo.vertebra_shapes import CanalSegment, Disc, Plane, VertebralBody

# Part codes of the `parts` map (what each bone voxel of a vertebra is).
PART_BODY = 1
PART_PEDICLE = 2
PART_LAMINA = 3
PART_SPINOUS = 4
PART_TRANSVERSE = 5
PART_SUPERIOR_ARTICULAR = 6
PART_INFERIOR_ARTICULAR = 7
PART_RIB = 8
PART_CODES: dict[str, int] = {
    "body": PART_BODY,
    "pedicle": PART_PEDICLE,
    "lamina": PART_LAMINA,
    "spinous_process": PART_SPINOUS,
    "transverse_process": PART_TRANSVERSE,
    "superior_articular_process": PART_SUPERIOR_ARTICULAR,
    "inferior_articular_process": PART_INFERIOR_ARTICULAR,
    "rib": PART_RIB,
}

FACET_GAP_MM = 1.5
SIDES: tuple[tuple[str, float], ...] = (("left", 1.0), ("right", -1.0))


@dataclass(frozen=True, eq=False)
class PedicleDesign:
    """The designed pedicle of one side, local frame: isthmus centre and axis."""

    side: str
    isthmus_local: FloatArray
    direction_local: FloatArray  # unit, from the posterior entry towards anterior
    width_mm: float
    height_mm: float


@dataclass(frozen=True, eq=False)
class ArchLayout:
    """Derived local positions of the neural arch of one vertebra (mm)."""

    canal_centre_y: float
    canal_half_width: float
    canal_half_depth: float
    canal_taper: float
    pedicle_z: float
    lamina_z: float
    lamina_half_height: float
    lamina_half_thickness: float
    pedicles: tuple[PedicleDesign, PedicleDesign]

    def pedicle(self, side: str) -> PedicleDesign:
        return self.pedicles[0] if side == "left" else self.pedicles[1]

    def junction(self, side: str) -> FloatArray:
        """Where pedicle, lamina, transverse and articular processes meet (local)."""
        p = self.pedicle(side)
        return p.isthmus_local - 7.0 * p.direction_local


@dataclass(frozen=True, eq=False)
class VertebraModel:
    """All shapes of one vertebra, in painting order (later parts win overlaps)."""

    pose: VertebraPose
    body: VertebralBody
    arch: ArchLayout
    parts: tuple[tuple[int, Shape], ...]

    @property
    def spec(self) -> LevelSpec:
        return self.pose.spec


def posterior_notch_mm(spec: LevelSpec) -> float:
    return {"thoracic": 2.0, "lumbar": 3.0, "sacrum": 4.0}[spec.kind]


def make_body(pose: VertebraPose) -> VertebralBody:
    """The body of a level, shaped by its kind (thoracic heart shape, lumbar kidney)."""
    s = pose.spec
    thoracic = s.is_thoracic
    return VertebralBody(
        frame=pose.frame,
        width_mm=s.body_width_mm,
        depth_mm=s.body_depth_mm,
        height_mm=s.central_height_mm,
        wedge_rad=s.wedge_rad,
        posterior_notch_mm=posterior_notch_mm(s),
        exponent=2.1 if thoracic else 2.3,
        posterior_exponent=2.2 if thoracic else 2.3,
        waist=0.05 if thoracic else 0.06,
        endplate_dip_mm=2.2 if s.fractured else 1.2,
        anterior_taper=0.25 if thoracic else 0.05,
        extra_below_mm=40.0 if s.kind == "sacrum" else 0.0,
    )


def arch_layout(spec: LevelSpec) -> ArchLayout:
    """Canal, pedicles and laminae placed around each other so that the canal is closed."""
    d, hc = spec.body_depth_mm, spec.central_height_mm
    notch = posterior_notch_mm(spec)
    half_ap = 0.5 * spec.canal_depth_mm
    centre_y = 0.5 * d - 0.8 * notch + half_ap
    half_w = 0.5 * spec.canal_width_mm
    taper = {"thoracic": 0.1, "lumbar": 0.3, "sacrum": 0.45}[spec.kind]
    if spec.name == "L5":
        taper = 0.4
    z_frac = {"thoracic": 0.2, "lumbar": 0.12, "sacrum": 0.0}[spec.kind]
    if spec.name == "L5":
        z_frac = 0.06
    ped_z = z_frac * hc
    isthmus_y = 0.5 * d + (0.3 if spec.is_thoracic else 0.35) * spec.canal_depth_mm
    theta = math.radians(spec.pedicle_medial_deg)
    pedicles = []
    for side, sx in SIDES:
        x = sx * (half_w + 0.5 * spec.pedicle_width_mm)
        pedicles.append(PedicleDesign(
            side=side,
            isthmus_local=np.array([x, isthmus_y, ped_z]),
            direction_local=np.array([-sx * math.sin(theta), -math.cos(theta), 0.0]),
            width_mm=spec.pedicle_width_mm,
            height_mm=spec.pedicle_height_mm,
        ))
    top = ped_z + 0.5 * spec.pedicle_height_mm + 1.5
    bottom = -0.5 * hc - (2.0 if spec.is_thoracic else 3.0)
    return ArchLayout(
        canal_centre_y=centre_y,
        canal_half_width=half_w,
        canal_half_depth=half_ap,
        canal_taper=taper,
        pedicle_z=ped_z,
        lamina_z=0.5 * (top + bottom),
        lamina_half_height=0.5 * (top - bottom),
        lamina_half_thickness=2.6 if spec.is_thoracic else 3.2,
        pedicles=(pedicles[0], pedicles[1]),
    )


def _capsule(frame: Frame, a: FloatArray, b: FloatArray, v_local: FloatArray,
             rv: tuple[float, float], rw: tuple[float, float],
             exponent: float = 2.0) -> EllipticCapsule:
    """A capsule given in local coordinates, placed in LPS."""
    return EllipticCapsule(frame.to_lps(a), frame.to_lps(b), frame.vector_to_lps(v_local),
                           rv, rw, exponent)


def _pedicle_parts(frame: Frame, p: PedicleDesign) -> list[Shape]:
    """Two tapered tubes meeting at the isthmus, so the isthmus is the narrowest point."""
    up = np.array([0.0, 0.0, 1.0])
    w, h = 0.5 * p.width_mm, 0.5 * p.height_mm
    front = p.isthmus_local + 11.0 * p.direction_local
    back = p.isthmus_local - 9.0 * p.direction_local
    return [
        _capsule(frame, p.isthmus_local, front, up, (h, 1.2 * h), (w, 1.3 * w)),
        _capsule(frame, p.isthmus_local, back, up, (h, 1.2 * h), (w, 1.5 * w)),
    ]


def _lamina(frame: Frame, spec: LevelSpec, arch: ArchLayout, sx: float) -> Shape:
    side = "left" if sx > 0 else "right"
    j = arch.junction(side)
    t = arch.lamina_half_thickness
    start = np.array([j[0], j[1] + 1.0, arch.lamina_z])
    end = np.array([0.0, arch.canal_centre_y + arch.canal_half_depth + t, arch.lamina_z])
    tilt = math.radians(18.0 if spec.is_thoracic else 10.0)
    v = np.array([0.0, -math.sin(tilt), math.cos(tilt)])
    h = arch.lamina_half_height
    return _capsule(frame, start, end, v, (h, h), (t, t), exponent=4.0)


def _spinous(frame: Frame, spec: LevelSpec, arch: ArchLayout) -> Shape:
    psi = math.radians(spec.spinous_down_deg)
    base = np.array([0.0, arch.canal_centre_y + arch.canal_half_depth + 2.0, arch.lamina_z])
    tip = base + spec.spinous_length_mm * np.array([0.0, math.cos(psi), -math.sin(psi)])
    v = np.array([0.0, math.sin(psi), math.cos(psi)])
    hh = 0.5 * spec.spinous_height_mm
    if spec.is_thoracic:
        rv, rw = (hh + 1.0, hh), (3.0, 2.7)
    else:
        rv, rw = (min(hh, arch.lamina_half_height) * 0.85, hh), (3.0, 3.2)
    return _capsule(frame, base, tip, v, rv, rw, exponent=3.0)


def _transverse(frame: Frame, spec: LevelSpec, arch: ArchLayout, sx: float) -> Shape:
    side = "left" if sx > 0 else "right"
    j = arch.junction(side)
    up = np.array([0.0, 0.0, 1.0])
    if spec.kind == "sacrum":  # the ala: a broad wing sloping down and out
        p = arch.pedicle(side)
        base = p.isthmus_local + np.array([sx * 2.0, -6.0, -7.0])
        tip = np.array([sx * spec.transverse_tip_mm, base[1] + 4.0, base[2] - 10.0])
        return _capsule(frame, base, tip, up, (13.0, 15.0), (12.0, 15.0), exponent=2.5)
    if spec.name == "L5":  # stout, rising from pedicle and body
        base = j + np.array([sx * 2.0, -1.0, -1.0])
        tip = np.array([sx * spec.transverse_tip_mm, base[1] + 2.0, base[2] + 1.0])
        return _capsule(frame, base, tip, up, (7.0, 5.5), (4.5, 4.0))
    if spec.is_thoracic:
        tau, elev = math.radians(30.0), math.radians(12.0)
        base = j + np.array([sx * 1.5, 0.0, 2.0])
        direction = np.array([sx * math.cos(tau) * math.cos(elev), math.sin(tau) * math.cos(elev),
                              math.sin(elev)])
        length = (spec.transverse_tip_mm - abs(base[0])) / (math.cos(tau) * math.cos(elev))
        return _capsule(frame, base, base + length * direction, up, (5.0, 5.5), (4.5, 5.0))
    tau = math.radians(10.0)
    base = j + np.array([sx * 2.0, -1.0, 1.0])
    direction = np.array([sx * math.cos(tau), math.sin(tau), 0.04])
    length = (spec.transverse_tip_mm - abs(base[0])) / math.cos(tau)
    return _capsule(frame, base, base + length * direction, up, (6.0, 4.0), (3.2, 2.2))


@dataclass(frozen=True, eq=False)
class FacetJoint:
    """A facet joint between two vertebrae, stated in the lower vertebra's local frame."""

    centre_local: FloatArray
    normal_local: FloatArray  # unit, from the inferior (upper bone) to the superior process
    thoracic: bool


def facet_joint(lower: LevelSpec, arch: ArchLayout, disc_height_mm: float, sx: float
                ) -> FacetJoint:
    """Where the joint with the vertebra above lies, and which way its joint space faces."""
    hc = lower.central_height_mm
    beta = math.radians(lower.facet_angle_deg)
    thoracic = lower.facet_angle_deg >= 60.0
    p = arch.pedicle("left" if sx > 0 else "right")
    if thoracic:
        centre = np.array([p.isthmus_local[0], p.isthmus_local[1] + 9.0,
                           0.5 * hc + 4.0])
    else:
        centre = np.array([sx * (arch.canal_half_width + 5.0),
                           arch.canal_centre_y + 0.4 * arch.canal_half_depth,
                           0.5 * hc + 0.5 * disc_height_mm])
    normal = np.array([sx * math.cos(beta), -math.sin(beta), 0.0])
    return FacetJoint(centre, normal, thoracic)


def _superior_articular(frame: Frame, arch: ArchLayout, joint: FacetJoint, sx: float
                        ) -> Shape:
    side = "left" if sx > 0 else "right"
    t = 2.0 if joint.thoracic else 2.4
    base = arch.junction(side) + np.array([sx * 1.0, 0.5, 2.0])
    top = joint.centre_local + (0.5 * FACET_GAP_MM + t) * joint.normal_local
    top = top + np.array([0.0, 0.0, 4.0])
    v = np.cross(joint.normal_local, [0.0, 0.0, 1.0])
    r = 5.0 if joint.thoracic else 6.0
    return _capsule(frame, base, top, v, (r, r), (t, t))


def _inferior_articular(upper: VertebraPose, upper_arch: ArchLayout, lower: VertebraPose,
                        joint: FacetJoint, sx: float) -> Shape:
    """The inferior articular process of ``upper`` reaching down to the joint with ``lower``."""
    t = 2.0 if joint.thoracic else 2.4
    hc = upper.spec.central_height_mm
    p = upper_arch.pedicle("left" if sx > 0 else "right")
    if joint.thoracic:
        base_local = np.array([p.isthmus_local[0], upper_arch.canal_centre_y
                               + upper_arch.canal_half_depth, -0.3 * hc])
    else:
        base_local = np.array([sx * (upper_arch.canal_half_width + 1.0),
                               upper_arch.canal_centre_y + upper_arch.canal_half_depth + 1.0,
                               -0.35 * hc])
    bottom_local = joint.centre_local - (0.5 * FACET_GAP_MM + t) * joint.normal_local
    bottom_local = bottom_local - np.array([0.0, 0.0, 5.0])
    v_local = np.cross(joint.normal_local, [0.0, 0.0, 1.0])
    r = 4.5 if joint.thoracic else 5.5
    return EllipticCapsule(upper.frame.to_lps(base_local), lower.frame.to_lps(bottom_local),
                           lower.frame.vector_to_lps(v_local), (r, r), (t, t))


def build_vertebra(layout: SpineLayout, name: str) -> VertebraModel:
    """All bone parts of one vertebra, in painting order (body last, so it wins)."""
    pose = layout.vertebra(name)
    spec, frame = pose.spec, pose.frame
    arch = arch_layout(spec)
    body = make_body(pose)
    parts: list[tuple[int, Shape]] = []
    for _, sx in SIDES:
        parts.append((PART_TRANSVERSE, _transverse(frame, spec, arch, sx)))
    parts.append((PART_SPINOUS, _spinous(frame, spec, arch)))
    for _, sx in SIDES:
        parts.append((PART_LAMINA, _lamina(frame, spec, arch, sx)))
    disc_above = layout.disc_above(name)
    disc_h = disc_above.spec.height_mm if disc_above is not None else 5.0
    for _, sx in SIDES:
        joint = facet_joint(spec, arch, disc_h, sx)
        parts.append((PART_SUPERIOR_ARTICULAR, _superior_articular(frame, arch, joint, sx)))
    below = _vertebra_below(layout, name)
    if below is not None:
        below_arch = arch_layout(below.spec)
        below_disc = layout.disc_above(below.name)
        h = below_disc.spec.height_mm if below_disc is not None else 5.0
        for _, sx in SIDES:
            joint = facet_joint(below.spec, below_arch, h, sx)
            parts.append((PART_INFERIOR_ARTICULAR,
                          _inferior_articular(pose, arch, below, joint, sx)))
    for p in arch.pedicles:
        parts.extend((PART_PEDICLE, s) for s in _pedicle_parts(frame, p))
    parts.append((PART_BODY, body))
    return VertebraModel(pose, body, arch, tuple(parts))


def _vertebra_below(layout: SpineLayout, name: str) -> VertebraPose | None:
    names = [v.name for v in layout.vertebrae]
    i = names.index(name)
    return layout.vertebrae[i + 1] if i + 1 < len(names) else None


def build_disc(layout: SpineLayout, upper: VertebraModel, lower: VertebraModel) -> Disc:
    """The disc between two modelled vertebrae (outline = the mean of their bodies)."""
    d = layout.disc_below(upper.pose.name)
    assert d is not None
    ub, lb = upper.body, lower.body
    outline = VertebralBody(
        frame=d.frame, width_mm=0.5 * (ub.width_mm + lb.width_mm),
        depth_mm=0.5 * (ub.depth_mm + lb.depth_mm), height_mm=d.spec.height_mm, wedge_rad=0.0,
        posterior_notch_mm=0.5 * (ub.posterior_notch_mm + lb.posterior_notch_mm),
        exponent=0.5 * (ub.exponent + lb.exponent), waist=0.0, endplate_dip_mm=0.0,
        anterior_taper=0.5 * (ub.anterior_taper + lb.anterior_taper),
        posterior_exponent=0.5 * (ub.posterior_exponent + lb.posterior_exponent),
    )
    return Disc(d.frame, ub, lb, outline, d.spec.height_mm)


def rib_polyline(pose: VertebraPose, arch: ArchLayout, sx: float) -> list[FloatArray]:
    """Local points along one rib: head at the body–pedicle junction, neck to the
    transverse process, then the shaft curving out, forward and down around the trunk."""
    spec = pose.spec
    side = "left" if sx > 0 else "right"
    p = arch.pedicle(side)
    hx = abs(p.isthmus_local[0]) + 0.5 * spec.pedicle_width_mm + 6.0
    head = np.array([sx * hx, 0.5 * spec.body_depth_mm + 0.5, arch.pedicle_z - 3.0])
    if spec.name in ("T9", "T10"):  # neck runs to the tip of the transverse process
        j = arch.junction(side)
        tau = math.radians(30.0)
        tip_y = j[1] + (spec.transverse_tip_mm - abs(j[0])) * math.tan(tau)
        tubercle = np.array([sx * (spec.transverse_tip_mm - 3.0), tip_y - 8.0,
                             arch.pedicle_z + 2.0])
    else:
        tubercle = np.array([sx * (hx + 20.0), p.isthmus_local[1] + 7.0,
                             arch.pedicle_z - 5.0])
    offsets = [(25, 3, -6), (50, -4, -13), (68, -22, -20), (80, -48, -27), (84, -78, -33),
               (82, -110, -38), (75, -140, -42)]
    n_shaft = {"T12": 2, "T11": 4}.get(spec.name, len(offsets))
    pts = [head, tubercle]
    for dx, dy, dz in offsets[:n_shaft]:
        pts.append(tubercle + np.array([sx * dx, dy, dz]))
    return pts


def build_rib(pose: VertebraPose, arch: ArchLayout, sx: float) -> list[EllipticCapsule]:
    """One rib as a chain of flat elliptic tubes (10–12 mm tall, 5–6 mm thick)."""
    pts = rib_polyline(pose, arch, sx)
    n = len(pts) - 1
    up = np.array([0.0, 0.0, 1.0])
    caps = []
    for i in range(n):
        if i == 0:
            rv, rw = (5.0, 4.5), (5.0, 3.8)
        elif i == 1:
            rv, rw = (4.5, 5.8), (3.8, 3.0)
        else:
            end_rv = 4.0 if i == n - 1 and pose.spec.name in ("T11", "T12") else 6.3
            rv, rw = (5.8, end_rv), (3.0, 2.7)
        caps.append(_capsule(pose.frame, pts[i], pts[i + 1], up, rv, rw))
    return caps


def canal_segments(layout: SpineLayout, model: VertebraModel) -> dict[str, Shape]:
    """The canal of one vertebra and the tubes inside it (dural sac, cord) and around it
    (ligamentum flavum), each cut at the mid-disc planes above and below."""
    pose, arch = model.pose, model.arch
    frame = pose.frame
    sup = frame.rotation[:, 2]
    above_d, below_d = layout.disc_above(pose.name), layout.disc_below(pose.name)
    above = (Plane(above_d.frame.origin_lps, above_d.frame.rotation[:, 2]) if above_d
             else Plane(frame.origin_lps + 60.0 * sup, sup))
    below = (Plane(below_d.frame.origin_lps, below_d.frame.rotation[:, 2]) if below_d
             else Plane(frame.origin_lps - 80.0 * sup, sup))
    hc = pose.spec.central_height_mm
    extent = (-0.5 * hc - 22.0 if below_d else -80.0, 0.5 * hc + 22.0 if above_d else 60.0)
    cy, a, b, taper = (arch.canal_centre_y, arch.canal_half_width, arch.canal_half_depth,
                       arch.canal_taper)

    def seg(dy: float, sa: float, sb: float, **kw: float | None) -> CanalSegment:
        return CanalSegment(frame, cy + dy, a * sa, b * sb, taper, above, below, extent,
                            **kw)  # type: ignore[arg-type]

    out: dict[str, Shape] = {
        "flavum": CanalSegment(frame, cy, a + 3.5, b + 3.5, taper, above, below, extent,
                               posterior_only_from_mm=cy - 0.3 * b),
        "canal": seg(0.0, 1.0, 1.0),
        "sac": seg(-0.1 * b, 0.86, 0.8),
    }
    cord_names = ("T9", "T10", "T11", "T12", "L1")
    if pose.name in cord_names:
        end = -0.2 * hc if pose.name == "L1" else None
        out["cord"] = CanalSegment(frame, cy - 0.15 * b, 4.6, 3.6, 0.0, above, below, extent,
                                   end_z_mm=end)
    return out
