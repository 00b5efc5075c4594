"""A series' thumbnail: one image in a soft-tissue window, shrunk to a small 8-bit square.

Plain numpy, so the window wraps it in a QImage and a report or a test can use it as is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray

from planning.vocabulary import WINDOW_PRESETS


def thumbnail(path: str | Path, size: int = 96) -> NDArray[np.uint8] | None:
    """``size``×``size`` grey levels of the image at ``path`` (HU through the soft-tissue
    window, aspect kept, padded black); None when the file holds no decodable image."""
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array.astype(np.float32)
    except Exception:
        return None
    if pixels.ndim == 3:  # a multi-frame image: its middle frame
        pixels = pixels[pixels.shape[0] // 2]
    if pixels.ndim != 2 or min(pixels.shape) < 2:
        return None
    slope = float(ds.get("RescaleSlope", 1) or 1)
    hu = pixels * slope + float(ds.get("RescaleIntercept", 0) or 0)
    width, level = WINDOW_PRESETS["Soft tissue"]
    grey = np.clip((hu - (level - width / 2)) / width, 0.0, 1.0)
    step = max(1, int(np.ceil(max(grey.shape) / size)))
    small = grey[::step, ::step]
    out = np.zeros((size, size), np.uint8)
    h, w = small.shape
    top, left = (size - h) // 2, (size - w) // 2
    out[top:top + h, left:left + w] = np.round(small * 255).astype(np.uint8)
    return out

