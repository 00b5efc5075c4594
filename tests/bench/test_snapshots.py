"""The before/after image comparison used to prove a restructuring changed nothing visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.snapshots import compare_folders, main


def _save(folder: Path, name: str, pixels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(folder / name)


def test_identical_changed_resized_and_missing_images_are_told_apart(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    page = rng.integers(0, 256, size=(40, 50, 3))
    before, after = tmp_path / "before", tmp_path / "after"
    _save(before, "same.png", page)
    _save(after, "same.png", page)
    changed = page.copy()
    changed[:10, :10] = 255 - changed[:10, :10]  # a 10 × 10 block of 2,000 pixels
    changed[30, 40] = np.clip(changed[30, 40] + 3, 0, 255)  # within the tolerance
    _save(before, "changed.png", page)
    _save(after, "changed.png", changed)
    _save(before, "resized.png", page)
    _save(after, "resized.png", page[:, :40])
    _save(before, "gone.png", page)
    _save(after, "new.png", page)
    result = {d.name: d for d in compare_folders(before, after, tolerance=8)}
    assert result["same.png"].changed == 0.0 and result["same.png"].largest == 0
    # the inverted block changes most of its pixels by far more than 8 grey levels
    assert 0.03 < result["changed.png"].changed <= 100 / 2000
    assert result["changed.png"].largest > 100
    assert result["resized.png"].note == "size 50×40 → 40×40"
    assert result["gone.png"].note == "only before" and result["new.png"].note == "only after"
    assert main([str(before), str(after)]) == 1
    only_same = tmp_path / "only_same"
    _save(only_same, "same.png", page)
    assert main([str(before / ".."), str(tmp_path / "missing")]) == 2
    twin = tmp_path / "twin"
    _save(twin, "same.png", page)
    assert main([str(only_same), str(twin)]) == 0
