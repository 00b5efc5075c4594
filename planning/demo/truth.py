"""Ground truth of the demo CT: what the phantom contains, where, in LPS millimetres.

`DemoTruth` holds, per planned level (superior → inferior: T10 first, L5 last), the body
centroid, the level's local axes, body heights, whether it is fractured, and for each side
the designed pedicle axis; plus a label map and a part map on the CT's own voxel grid
(``[k, j, i]``, same affine as the volume).

Label codes (``labels``): one per vertebra, whole bone (body and posterior elements), in
VerSe numbering — T9 16, T10 17, T11 18, T12 19, L1 20, L2 21, L3 22, L4 23, L5 24,
sacrum 26 — then spinal canal 100, intervertebral discs 101, ribs 102, aorta (and common
iliac arteries) 110, IVC (and common iliac veins) 111, left kidney 112, right kidney 113,
liver 114, spleen 115; 0 is everything else (air, fat, muscle, bowel, lung).

Part codes (``parts``, meaningful where ``labels`` is a vertebra): body 1, pedicle 2,
lamina 3, spinous process 4, transverse process (sacral ala) 5, superior articular process 6,
inferior articular process 7; rib 8 where ``labels`` is 102.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from planning.demo.vertebra_model import PART_BODY, PART_CODES, PART_PEDICLE
from planning.errors import VertebroPlanError

FloatArray = NDArray[np.float64]
Side = Literal["left", "right"]

LABEL_CODES: dict[str, int] = {
    "T9": 16, "T10": 17, "T11": 18, "T12": 19,
    "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24, "sacrum": 26,
    "canal": 100, "disc": 101, "rib": 102,
    "aorta": 110, "ivc": 111, "kidney_left": 112, "kidney_right": 113,
    "liver": 114, "spleen": 115,
}
TRUTH_JSON = "ground_truth.json"
TRUTH_LABELS = "ground_truth_labels.npz"
TRUTH_FORMAT = "vertebroplan-demo-truth"
TRUTH_VERSION = 1


class DemoTruthError(VertebroPlanError, ValueError):
    """A demo ground-truth folder is missing a file or holds something unexpected."""


def _vec(v: Any) -> FloatArray:
    return np.asarray(v, dtype=np.float64).reshape(3)


def _list(v: FloatArray) -> list[float]:
    return [round(float(x), 4) for x in v]


@dataclass(frozen=True, eq=False)
class PedicleTruth:
    """The designed axis of one pedicle, LPS mm.

    ``direction_lps`` is a unit vector from the posterior entry towards anterior (into the
    body). ``entry_lps`` and ``anterior_cortex_lps`` are where the axis leaves the vertebra's
    label behind the pedicle and in front of the body.
    """

    side: Side
    isthmus_lps: FloatArray
    direction_lps: FloatArray
    isthmus_width_mm: float
    isthmus_height_mm: float
    entry_lps: FloatArray
    anterior_cortex_lps: FloatArray

    def to_json(self) -> dict[str, Any]:
        return {
            "isthmus_lps": _list(self.isthmus_lps),
            "direction_lps": _list(self.direction_lps),
            "isthmus_width_mm": round(self.isthmus_width_mm, 3),
            "isthmus_height_mm": round(self.isthmus_height_mm, 3),
            "entry_lps": _list(self.entry_lps),
            "anterior_cortex_lps": _list(self.anterior_cortex_lps),
        }

    @classmethod
    def from_json(cls, side: Side, d: dict[str, Any]) -> PedicleTruth:
        return cls(side, _vec(d["isthmus_lps"]), _vec(d["direction_lps"]),
                   float(d["isthmus_width_mm"]), float(d["isthmus_height_mm"]),
                   _vec(d["entry_lps"]), _vec(d["anterior_cortex_lps"]))


@dataclass(frozen=True, eq=False)
class LevelTruth:
    """One planned vertebra: body centroid, local axes (unit LPS vectors), body size."""

    name: str
    label_code: int
    centroid_lps: FloatArray  # centroid of the body's label voxels
    superior_lps: FloatArray
    anterior_lps: FloatArray
    left_lps: FloatArray
    body_width_mm: float
    body_depth_mm: float
    anterior_height_mm: float
    posterior_height_mm: float
    fractured: bool
    has_ribs: bool
    pedicles: tuple[PedicleTruth, PedicleTruth]  # (left, right)

    def pedicle(self, side: Side) -> PedicleTruth:
        for p in self.pedicles:
            if p.side == side:
                return p
        raise KeyError(side)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label_code": self.label_code,
            "centroid_lps": _list(self.centroid_lps),
            "axes_lps": {"superior": _list(self.superior_lps),
                         "anterior": _list(self.anterior_lps), "left": _list(self.left_lps)},
            "body": {"width_mm": self.body_width_mm, "depth_mm": self.body_depth_mm,
                     "anterior_height_mm": self.anterior_height_mm,
                     "posterior_height_mm": self.posterior_height_mm},
            "fractured": self.fractured,
            "has_ribs": self.has_ribs,
            "pedicles": {p.side: p.to_json() for p in self.pedicles},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LevelTruth:
        axes, body = d["axes_lps"], d["body"]
        return cls(
            d["name"], int(d["label_code"]), _vec(d["centroid_lps"]), _vec(axes["superior"]),
            _vec(axes["anterior"]), _vec(axes["left"]), float(body["width_mm"]),
            float(body["depth_mm"]), float(body["anterior_height_mm"]),
            float(body["posterior_height_mm"]), bool(d["fractured"]), bool(d["has_ribs"]),
            (PedicleTruth.from_json("left", d["pedicles"]["left"]),
             PedicleTruth.from_json("right", d["pedicles"]["right"])),
        )


@dataclass(frozen=True, eq=False)
class DemoTruth:
    """Everything known about the demo CT. ``levels`` run superior → inferior (T10 … L5)."""

    levels: tuple[LevelTruth, ...]
    labels: NDArray[np.uint8]
    parts: NDArray[np.uint8]
    affine_lps: FloatArray

    # ---- look-ups ---------------------------------------------------------------------
    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    def level(self, name: str) -> LevelTruth:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"no level {name!r} in the demo CT (it has {', '.join(self.level_names)})")

    @property
    def fractured_level(self) -> LevelTruth:
        return next(lv for lv in self.levels if lv.fractured)

    # ---- masks, [k, j, i] booleans on the volume grid ---------------------------------
    def label_mask(self, what: str) -> NDArray[np.bool_]:
        """Voxels of one label (``"canal"``, ``"disc"``, ``"aorta"``, ``"L1"`` …)."""
        try:
            code = LABEL_CODES[what]
        except KeyError:
            raise KeyError(f"unknown label {what!r}; known: {', '.join(LABEL_CODES)}") from None
        return self.labels == code

    def canal_mask(self) -> NDArray[np.bool_]:
        return self.labels == LABEL_CODES["canal"]

    def vertebra_mask(self, name: str) -> NDArray[np.bool_]:
        """The whole vertebra (body and posterior elements)."""
        return self.label_mask(name)

    def body_mask(self, name: str) -> NDArray[np.bool_]:
        return self.vertebra_mask(name) & (self.parts == PART_BODY)

    def pedicle_mask(self, name: str, side: Side) -> NDArray[np.bool_]:
        """One pedicle: the vertebra's pedicle voxels on that side of its mid-sagittal plane."""
        lv = self.level(name)
        m = self.vertebra_mask(name) & (self.parts == PART_PEDICLE)
        k, j, i = np.nonzero(m)
        ijk1 = np.stack([i, j, k, np.ones_like(i)]).astype(np.float64)
        lps = (self.affine_lps @ ijk1)[:3].T
        left = (lps - lv.centroid_lps) @ lv.left_lps > 0
        keep = left if side == "left" else ~left
        out = np.zeros_like(m)
        out[k[keep], j[keep], i[keep]] = True
        return out

    # ---- serialisation ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary (no arrays): levels, centroids, axes, pedicle axes, codes."""
        return {
            "format": TRUTH_FORMAT,
            "version": TRUTH_VERSION,
            "frame": "LPS",
            "units": "mm",
            "level_order": "superior_to_inferior",
            "label_codes": dict(LABEL_CODES),
            "part_codes": dict(PART_CODES),
            "grid": {"shape_kji": list(self.labels.shape),
                     "affine_lps": [[float(v) for v in row] for row in self.affine_lps]},
            "labels_file": TRUTH_LABELS,
            "levels": [lv.to_json() for lv in self.levels],
        }

    def save(self, out_dir: str | Path) -> None:
        """Write ``ground_truth.json`` and ``ground_truth_labels.npz`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / TRUTH_JSON).write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        np.savez_compressed(out / TRUTH_LABELS, labels=self.labels, parts=self.parts,
                            affine_lps=self.affine_lps)

    @classmethod
    def load(cls, out_dir: str | Path) -> DemoTruth:
        """Read back what `save` wrote."""
        folder = Path(out_dir)
        try:
            meta = json.loads((folder / TRUTH_JSON).read_text(encoding="utf-8"))
            with np.load(folder / TRUTH_LABELS) as z:
                labels, parts, affine = z["labels"], z["parts"], z["affine_lps"]
        except FileNotFoundError as e:
            raise DemoTruthError(f"'{folder}' has no demo ground truth ({e.filename} is "
                                 "missing).") from e
        if meta.get("format") != TRUTH_FORMAT or meta.get("version") != TRUTH_VERSION:
            raise DemoTruthError(f"'{folder / TRUTH_JSON}' is not a version-{TRUTH_VERSION} "
                                 "VertebroPlan demo ground truth.")
        levels = tuple(LevelTruth.from_json(d) for d in meta["levels"])
        return cls(levels, labels.astype(np.uint8), parts.astype(np.uint8),
                   np.asarray(affine, dtype=np.float64))
