"""Test helper: the demo CT as the DICOM series a user opens (the cached one, written once
per run), and needles along its designed pedicles, for the exports that refer to the CT's
own files (SR, SEG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from planning.demo import DemoTruth, load_demo_truth
from planning.demo.cache import demo_ct_path
from planning.io import load_path
from planning.plan import Side, Trajectory
from planning.volume import Volume


def demo_series() -> tuple[Path, DemoTruth, Volume]:
    """The cached demo DICOM series' folder, its ground truth, and the volume the project's
    loader makes of it (with the series' real UIDs). Read it; never write into the folder."""
    folder = demo_ct_path()
    return folder, load_demo_truth(folder), load_path(folder)


def pedicle_needle(truth: DemoTruth, level: str, side: Side, gauge: str = "11G") -> Trajectory:
    """Along the pedicle's axis, tip 6 mm short of the anterior cortex."""
    p = truth.level(level).pedicle(side.value)
    reach = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps)) - 6.0
    return Trajectory(level, side, p.entry_lps, p.entry_lps + reach * p.direction_lps, gauge)
