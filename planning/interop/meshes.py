"""Triangle meshes of the scene (bone, canal, vertebrae, needles) as STL and OBJ files.

Why: for 3D printing a teaching model and for opening the plan in other viewers (3D Slicer,
MeshLab, Blender, slicers of 3D printers).

Coordinate convention of every file written here: DICOM patient LPS, millimetres —
+x towards the patient's left, +y posterior, +z towards the head — exactly the numbers
VertebroPlan uses internally, so meshes of one export line up with each other and with the
CT. The binary STL header (80 bytes, ASCII) says
``"VertebroPlan LPS mm - research/training only - SPACE=LPS"``; OBJ files start with comment
lines saying the same. ``SPACE=LPS`` is the tag 3D Slicer looks for in STL headers and OBJ
comments to load a mesh in the right frame without asking.

Meshes are `planning.triangle_mesh.TriangleMesh` values (``vertices_lps``, ``faces``,
``normals_lps``), with faces counter-clockwise seen from outside, so that normals point out
of the solid and printers and viewers agree on what is inside. Writers are numpy-vectorised
and chunked: a bone surface of millions of triangles is written in seconds, never with a
Python loop per triangle.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray

from planning.anatomy.model import Anatomy
from planning.atomic_file import atomic_open
from planning.errors import VertebroPlanError
from planning.mask_reslice import mask_mesh
from planning.plan import Plan, Trajectory
from planning.progress import Progress, no_progress
from planning.triangle_mesh import TriangleMesh, empty_mesh
from planning.vocabulary import DISCLAIMER
from planning.volume import validate_affine

Mesh = TriangleMesh
"""A triangle mesh in LPS mm (`planning.triangle_mesh`, the one mesh type)."""

STL_HEADER_TEXT = "VertebroPlan LPS mm - research/training only - SPACE=LPS"
CONVENTION = (
    "Coordinates: DICOM patient LPS, millimetres "
    "(+x patient left, +y posterior, +z head)."
)
FORMATS = ("stl", "obj")

_STL_RECORD = np.dtype(
    [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attributes", "<u2")]
)
_CHUNK = 500_000  # triangles or rows per write: bounded memory for huge meshes


class MeshError(VertebroPlanError, ValueError):
    """A mesh cannot be built or written (bad arrays, unknown format)."""


# ----------------------------------------------------------------------------- building


def needle_mesh(trajectory: Trajectory, segments: int = 24) -> Mesh:
    """The needle as a closed cylinder from entry to tip, in LPS mm.

    The cross-section is a regular polygon circumscribed about the needle's circle (its
    flat sides touch the true outer surface), so the mesh is never thinner than the needle:
    a printed or displayed needle does not suggest more clearance than there is. The
    volume is ``segments·tan(π/segments)/π`` of the true one (+0.6 % for 24 segments).

    The mesh is watertight: every edge is shared by exactly two triangles (rims are shared
    by side and caps). Normals point outwards; rim normals are the mean of side and cap.
    """
    if segments < 3:
        raise MeshError(f"a needle needs at least 3 segments, got {segments}")
    entry, tip = trajectory.entry, trajectory.target
    d = trajectory.direction
    # any vector not parallel to d gives the first axis of the cross-section
    helper = np.eye(3)[int(np.argmin(np.abs(d)))]
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)  # (u, v, d) is right-handed: rings run counter-clockwise about d
    n = segments
    theta = 2.0 * np.pi * np.arange(n) / n
    radial = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * v
    radius = trajectory.radius_mm / np.cos(np.pi / n)
    vertices = np.concatenate(
        [entry + radius * radial, tip + radius * radial, entry[None], tip[None]]
    )
    k = np.arange(n)
    k1 = (k + 1) % n
    c_entry, c_tip = 2 * n, 2 * n + 1
    faces = np.concatenate(
        [
            np.stack([k, k1, n + k1], axis=1),  # side
            np.stack([k, n + k1, n + k], axis=1),
            np.stack([np.full(n, c_entry), k1, k], axis=1),  # entry cap, normal −d
            np.stack([np.full(n, c_tip), n + k, n + k1], axis=1),  # tip cap, normal +d
        ]
    )
    normals = np.concatenate(
        [radial - d, radial + d, -d[None], d[None]]
    )
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return TriangleMesh(
        vertices.astype(np.float32), faces.astype(np.int32), normals.astype(np.float32)
    )


def signed_volume_mm3(mesh: Mesh) -> float:
    """Volume enclosed by a closed mesh in mm³ (divergence theorem).

    Positive when faces are counter-clockwise seen from outside (normals outwards),
    negative when the mesh is inside out. Computed about the mean vertex in float64, so
    meshes far from the origin lose no precision.
    """
    if len(mesh.faces) == 0:
        return 0.0
    verts = np.asarray(mesh.vertices_lps, dtype=np.float64)
    verts = verts - verts.mean(axis=0)
    total = 0.0
    for s in range(0, len(mesh.faces), _CHUNK):
        tri = verts[np.asarray(mesh.faces[s : s + _CHUNK])]
        total += float(np.einsum("ij,ij->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])))
    return total / 6.0


def _face_normals(tri: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit normals of triangles ``(m, 3, 3)`` from their winding; 0 for degenerate ones."""
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def mask_surface(
    mask: NDArray[np.bool_],
    affine_lps: NDArray[np.float64],
    *,
    step_vox: int = 1,
    sigma_vox: float = 0.8,
) -> Mesh:
    """Closed surface of a bool mask ``[k, j, i]`` (canal, a vertebra) in LPS mm.

    Built by `planning.mask_reslice.mask_mesh` (slight blur, marching cubes at 0.5), the
    same surface the 3-D view shows. Orientation is then checked rather than trusted: a
    grid with a mirrored axis (negative determinant, e.g. a flipped slice order) turns
    marching-cubes triangles inside out, so the winding is set from the enclosed volume's
    sign and the vertex normals from the winding. Empty masks give an empty mesh.
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        raise MeshError(f"the mask must be 3-D [k, j, i], got shape {m.shape}")
    affine = validate_affine(np.asarray(affine_lps, dtype=np.float64))
    verts, faces, normals = mask_mesh(m.astype(bool), affine, step_vox=step_vox,
                                      sigma_vox=sigma_vox)
    if len(faces) == 0:
        return empty_mesh()
    mesh = TriangleMesh(verts, np.ascontiguousarray(faces, dtype=np.int32), normals)
    if signed_volume_mm3(mesh) < 0:
        mesh = mesh._replace(faces=np.ascontiguousarray(mesh.faces[:, ::-1]))
    # vertex normals must agree with the winding (they come from the field's gradient)
    tri = np.asarray(mesh.vertices_lps, dtype=np.float64)[mesh.faces]
    agree = np.einsum("ij,ij->", _face_normals(tri), mesh.normals_lps[mesh.faces].sum(axis=1))
    if agree < 0:
        mesh = mesh._replace(normals_lps=-mesh.normals_lps)
    return mesh


# ----------------------------------------------------------------------------- writing


def _checked(mesh: Mesh, path: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Vertices (float32) and faces (int64), or `MeshError` naming the file."""
    verts = np.asarray(mesh.vertices_lps)
    faces = np.asarray(mesh.faces)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise MeshError(f"'{path}': vertices must be (n, 3), got {verts.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise MeshError(f"'{path}': faces must be (m, 3) triangles, got {faces.shape}")
    if not np.all(np.isfinite(verts)):
        raise MeshError(f"'{path}': the mesh has non-finite vertex coordinates")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(verts)):
        raise MeshError(f"'{path}': faces refer to vertices that do not exist")
    if len(faces) >= 2**32:
        raise MeshError(f"'{path}': {len(faces)} triangles are too many for an STL file")
    return verts.astype(np.float32, copy=False), faces.astype(np.int64, copy=False)


def stl_header() -> bytes:
    """The 80-byte header: ASCII (readers show it as Latin-1), padded with spaces.

    It does not start with "solid", which would make some readers take the file for ASCII
    STL.
    """
    return STL_HEADER_TEXT.encode("ascii").ljust(80, b" ")


def write_stl(path: str | Path, mesh: Mesh) -> Path:
    """Write a binary STL in LPS mm (float32), atomically; returns the path.

    Facet normals are computed from each triangle's winding (counter-clockwise seen from
    outside), which is what STL readers and slicers expect; the vertex normals of the mesh
    are not stored (STL has no place for them).
    """
    p = Path(path)
    verts, faces = _checked(mesh, p)
    with atomic_open(p, "wb") as fh:
        fh.write(stl_header())
        fh.write(np.array([len(faces)], dtype="<u4").tobytes())
        for s in range(0, len(faces), _CHUNK):
            tri = verts[faces[s : s + _CHUNK]]
            rec = np.zeros(len(tri), dtype=_STL_RECORD)
            rec["vertices"] = tri
            rec["normal"] = _face_normals(tri.astype(np.float64))
            fh.write(rec.tobytes())
    return p


def _write_rows(fh: IO[bytes], row_format: str, rows: NDArray[np.generic]) -> None:
    """Format a 2-D array into text lines by the chunk (one C-level ``%`` per chunk)."""
    for s in range(0, len(rows), _CHUNK):
        part = rows[s : s + _CHUNK]
        fh.write(((row_format * len(part)) % tuple(part.ravel().tolist())).encode("ascii"))


def write_obj(path: str | Path, mesh: Mesh, *, name: str | None = None) -> Path:
    """Write a Wavefront OBJ with vertex normals in LPS mm, atomically; returns the path.

    Vertices are written with 9 significant digits, which reproduces the float32 values
    exactly, so STL and OBJ of one mesh hold the same coordinates. Faces use ``v//vn``
    with the same index for vertex and normal.
    """
    p = Path(path)
    verts, faces = _checked(mesh, p)
    normals = np.asarray(mesh.normals_lps, dtype=np.float32)
    has_normals = normals.shape == verts.shape
    object_name = name or p.stem
    header = (
        f"# VertebroPlan mesh '{object_name}'\n"
        f"# {CONVENTION} SPACE=LPS\n"
        f"# {DISCLAIMER.replace(' — ', ' - ')}.\n"  # plain ASCII for OBJ readers
        f"o {object_name}\n"
    )
    with atomic_open(p, "wb") as fh:
        fh.write(header.encode("utf-8"))
        _write_rows(fh, "v %.9g %.9g %.9g\n", verts)
        if has_normals:
            _write_rows(fh, "vn %.6g %.6g %.6g\n", normals)
            idx = np.repeat(faces + 1, 2, axis=1)  # a//a b//b c//c, 1-based
            _write_rows(fh, "f %d//%d %d//%d %d//%d\n", idx)
        else:
            _write_rows(fh, "f %d %d %d\n", faces + 1)
    return p


def _readme(written: list[Path], skipped: list[str]) -> str:
    lines = [
        "VertebroPlan 3-D meshes",
        "",
        DISCLAIMER + ".",
        "",
        CONVENTION,
        "All meshes share this frame: they line up with each other and with the CT.",
        "3D Slicer reads the frame from the files (SPACE=LPS); other software may show",
        "the patient mirrored left-right unless told the coordinates are LPS.",
        "Triangles are counter-clockwise seen from outside (normals point outwards).",
        "",
        "Files:",
        *(f"  {p.name}" for p in written),
    ]
    if skipped:
        lines += ["", "Not written (empty surface):", *(f"  {s}" for s in skipped)]
    return "\n".join(lines) + "\n"


def _vertebra_surface(anatomy: Anatomy, level: str) -> Mesh:
    return mask_surface(anatomy.vertebra_mask(level), anatomy.affine_lps)


def write_scene_meshes(
    folder: str | Path,
    *,
    bone: Mesh | None = None,
    anatomy: Anatomy | None = None,
    plan: Plan | None = None,
    fmt: str = "stl",
    progress: Progress | None = None,
) -> list[Path]:
    """Write the scene as one mesh file per structure, plus a README.txt.

    Files: ``bone.<fmt>`` (the CT's bone surface), ``canal.<fmt>``, one per vertebra
    (``L1.<fmt>`` …), one per needle (``needle_L1_left.<fmt>`` …). Structures whose
    surface is empty are left out and listed in the README. Files of an earlier export in
    the same folder that this one does not write are left alone, so export into an empty
    folder when in doubt; the README lists exactly the files of this export.

    Returns the paths written, the README last.
    """
    kind = fmt.lower().lstrip(".")
    if kind not in FORMATS:
        raise MeshError(f"'{fmt}' is not a mesh format this exports ({', '.join(FORMATS)})")
    write: Callable[[Path, Mesh], Path] = write_stl if kind == "stl" else write_obj
    progress = progress or no_progress()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)

    jobs: list[tuple[str, Callable[[], Mesh]]] = []
    if bone is not None:
        jobs.append(("bone", lambda: bone))
    if anatomy is not None:
        a = anatomy
        jobs.append(("canal", lambda: mask_surface(a.canal, a.affine_lps)))
        for level in a.level_names():
            jobs.append((level, partial(_vertebra_surface, a, level)))
    if plan is not None:
        for t in plan.trajectories:
            jobs.append((f"needle_{t.level}_{t.side.value}", partial(needle_mesh, t)))

    written: list[Path] = []
    skipped: list[str] = []
    for n, (stem, build) in enumerate(jobs):
        progress.report(n, len(jobs) + 1, f"Writing {stem}.{kind}…")
        mesh = build()
        if len(mesh.faces) == 0:
            skipped.append(stem)
            continue
        written.append(write(out / f"{stem}.{kind}", mesh))
    progress.report(len(jobs), len(jobs) + 1, "Writing README.txt…")
    with atomic_open(out / "README.txt", "wb") as fh:
        fh.write(_readme(written, skipped).encode("utf-8"))
    written.append(out / "README.txt")
    progress.report(len(jobs) + 1, len(jobs) + 1, "Meshes written.")
    return written
