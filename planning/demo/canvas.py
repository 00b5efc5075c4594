"""The arrays the demo phantom is painted into, and the painting primitive.

Structures are painted one after another, each over the previous ones (like a painter:
fat, then muscles, then vessels, discs, bone), and every stroke writes the HU value, the
label code (0 for unlabelled tissue) and the part code together, so the label map always
describes exactly what the HU array shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planning.demo.shapes import AxialProfile, BoolArray, Box, F32Array, Grid, Shape


@dataclass(eq=False)
class Canvas:
    """Clean (noise-free) HU, labels and parts on the volume grid, all ``[k, j, i]``."""

    grid: Grid
    hu: NDArray[np.int16]
    labels: NDArray[np.uint8]
    parts: NDArray[np.uint8]

    @classmethod
    def empty(cls, grid: Grid, air_hu: int = -1000) -> Canvas:
        return cls(grid, np.full(grid.shape, air_hu, dtype=np.int16),
                   np.zeros(grid.shape, dtype=np.uint8), np.zeros(grid.shape, dtype=np.uint8))

    def region(self, shape: Shape | AxialProfile, within: Box | None = None
               ) -> tuple[Box, BoolArray] | None:
        """The voxels a shape covers: its box and a boolean mask over that box."""
        if isinstance(shape, AxialProfile):
            box = shape.box()
        else:
            box = self.grid.box_around(*shape.bounds_lps())
        if box is not None and within is not None:
            box = box.intersect(within)
        if box is None:
            return None
        axes = self.grid.axes(box)
        mask = shape.inside(axes, box) if isinstance(shape, AxialProfile) else shape.inside(axes)
        return box, mask

    def fill(self, shape: Shape | AxialProfile, hu: float, label: int = 0, part: int = 0,
             within: Box | None = None) -> tuple[Box, BoolArray] | None:
        """Paint a whole shape with one HU value; returns what was painted."""
        found = self.region(shape, within)
        if found is not None:
            self.fill_mask(found[0], found[1], hu, label, part)
        return found

    def fill_mask(self, box: Box, mask: BoolArray, hu: float | F32Array, label: int = 0,
                  part: int = 0) -> None:
        """Paint the voxels of ``mask`` (over ``box``); ``hu`` is a scalar or a box array."""
        sl = box.slices
        if isinstance(hu, np.ndarray):
            self.hu[sl][mask] = np.clip(np.rint(hu[mask]), -1024, 3071).astype(np.int16)
        else:
            self.hu[sl][mask] = round(hu)
        self.labels[sl][mask] = label
        self.parts[sl][mask] = part
