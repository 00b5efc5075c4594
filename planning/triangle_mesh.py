"""The one triangle-mesh type of VertebroPlan: the bone surface, the canal and vertebrae for
the views and the report, the needles and cement, and every mesh exported (STL/OBJ).

Why a NamedTuple: the views, the report's 3D snapshots and the exporters all unpack
``vertices, faces, normals``; a tuple of three arrays was the shape they shared long before
it had a name, so the name costs nothing and keeps the fields' meaning (LPS mm, outward).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class TriangleMesh(NamedTuple):
    """A triangle surface in LPS mm; unpacks as ``vertices_lps, faces, normals_lps``.

    ``faces`` index ``vertices_lps`` counter-clockwise seen from outside, and
    ``normals_lps`` are unit vertex normals pointing out.
    """

    vertices_lps: NDArray[np.float32]
    faces: NDArray[np.int32]
    normals_lps: NDArray[np.float32]

    @property
    def is_empty(self) -> bool:
        return len(self.faces) == 0


def empty_mesh() -> TriangleMesh:
    """A surface with no triangles: what a view is given to clear its actor."""
    return TriangleMesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32),
                        np.zeros((0, 3), np.float32))


def merge_meshes(parts: list[TriangleMesh]) -> TriangleMesh:
    """One mesh of several, the triangles re-indexed (one actor for, e.g., the cement of
    both needles)."""
    if not parts:
        return empty_mesh()
    offsets = np.cumsum([0] + [len(v) for v, _f, _n in parts[:-1]])
    return TriangleMesh(
        np.concatenate([v for v, _f, _n in parts]).astype(np.float32),
        np.concatenate([f + o for (_v, f, _n), o in zip(parts, offsets, strict=True)]
                       ).astype(np.int32),
        np.concatenate([n for _v, _f, n in parts]).astype(np.float32))
