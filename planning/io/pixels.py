"""Pixel data of a sorted stack of images → int16 Hounsfield units.

Uncompressed little-endian pixel data is read straight from its byte offset (found when
the header was scanned); compressed data goes through pydicom's decoders (pylibjpeg
plugins). Files are read by a thread pool: file reads and the C decoders release the GIL.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import UID

from planning.errors import CodecError, SeriesError
from planning.io.dicom_headers import PARSE_ERRORS, ImageHeader
from planning.progress import Progress

HU_MIN, HU_MAX = -32768, 32767
UNCOMPRESSED_SYNTAXES = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
}

_CODEC_HINT = {
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}


def _native_dtype(h: ImageHeader) -> np.dtype:
    kind = "i" if h.pixel_representation == 1 else "u"
    return np.dtype(f"<{kind}{h.bits_allocated // 8}")


def _read_native(h: ImageHeader) -> np.ndarray:
    assert h.pixel_offset is not None
    n = h.rows * h.columns
    frame = h.frame or 0
    dtype = _native_dtype(h)
    try:
        data = np.fromfile(
            h.path, dtype=dtype, count=n, offset=h.pixel_offset + frame * n * dtype.itemsize
        )
    except OSError as exc:
        raise SeriesError(f"Could not read '{h.path}': {exc.strerror or exc}.") from exc
    if data.size != n:
        raise SeriesError(
            f"The pixel data of '{h.path}' is truncated ({data.size} of {n} pixels): "
            "the file is damaged."
        )
    return _apply_bits_stored(data.reshape(h.rows, h.columns), h)


def _apply_bits_stored(stored: np.ndarray, h: ImageHeader) -> np.ndarray:
    """Keep only the BitsStored low bits (old overlay bits above them are not pixel values)
    and sign-extend signed data, as the standard defines (PS3.5 §8.1.1)."""
    bits = h.bits_stored
    if not 0 < bits < h.bits_allocated:
        return stored
    wide = stored.astype(np.int32) & ((1 << bits) - 1)
    if h.pixel_representation == 1:
        sign = 1 << (bits - 1)
        wide = np.where(wide & sign, wide - (1 << bits), wide)
    return wide


class _FrameCache:
    """Decoded multi-frame files, so an Enhanced CT file is decoded once, not once per frame."""

    def __init__(self) -> None:
        self._arrays: dict[Path, np.ndarray] = {}

    def get(self, h: ImageHeader) -> np.ndarray:
        arr = self._arrays.get(h.path)
        if arr is None:
            arr = _decode_file(h)
            self._arrays[h.path] = arr
        if arr.ndim != 3 or h.frame is None:
            return arr  # one image (the shape check names a file that decodes otherwise)
        if h.frame >= arr.shape[0]:
            raise SeriesError(
                f"'{h.path}' holds {arr.shape[0]} frame(s) of pixel data where its header "
                f"describes {h.number_of_frames}: the file is damaged."
            )
        return arr[h.frame]


def _decode_file(h: ImageHeader) -> np.ndarray:
    """Decode a file's pixel data with pydicom (compressed or unusual layouts)."""
    ts = UID(h.transfer_syntax)
    try:
        ds = pydicom.dcmread(h.path, force=h.raw_dataset)
        if h.raw_dataset:  # no file meta: say how the dataset is encoded
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ts
        arr = np.asarray(ds.pixel_array)
        return arr.astype(arr.dtype.newbyteorder("="), copy=False)  # big-endian files
    except OSError as exc:
        raise SeriesError(f"Could not read '{h.path}': {exc.strerror or exc}.") from exc
    except (NotImplementedError, RuntimeError, ImportError, ValueError) as exc:
        if str(ts) not in UNCOMPRESSED_SYNTAXES:
            hint = _CODEC_HINT.get(str(ts))
            install = f"; install {hint}" if hint else ""
            name = ts.name if ts.is_transfer_syntax else "an unknown transfer syntax"
            raise CodecError(
                f"'{h.path}' is compressed as {name} ({ts}) and no installed decoder "
                f"handles it{install}."
            ) from exc
        raise SeriesError(f"Could not decode the pixel data of '{h.path}': {exc}") from exc
    except PARSE_ERRORS as exc:
        raise SeriesError(
            f"The pixel data of '{h.path}' cannot be read ({exc}); the file is damaged."
        ) from exc


def _to_hu(stored: np.ndarray, h: ImageHeader, out: np.ndarray) -> int:
    """Write HU (RescaleSlope/Intercept applied) into ``out``; returns the clipped count."""
    intercept = h.rescale_intercept
    if (
        h.rescale_slope == 1.0
        and float(intercept).is_integer()
        and HU_MIN <= intercept <= HU_MAX
        and stored.dtype.itemsize == 2
    ):
        lo, hi = int(stored.min()) + int(intercept), int(stored.max()) + int(intercept)
        if lo >= HU_MIN and hi <= HU_MAX:
            # Every result fits int16, so 16-bit wrap-around arithmetic gives it exactly,
            # in one pass and without a temporary int32 copy.
            np.add(stored.view(np.int16), np.int16(int(intercept)), out=out, casting="unsafe")
            return 0
    if h.rescale_slope == 1.0 and float(h.rescale_intercept).is_integer():
        hu = stored.astype(np.int32) + int(h.rescale_intercept)
    else:
        hu = np.rint(stored.astype(np.float64) * h.rescale_slope + h.rescale_intercept)
    clipped = int(np.count_nonzero((hu < HU_MIN) | (hu > HU_MAX)))
    if clipped:
        hu = np.clip(hu, HU_MIN, HU_MAX)
    out[...] = hu
    return clipped


def _check_claimed_size(h: ImageHeader) -> None:
    """Refuse an uncompressed image whose header claims more pixels than its file holds,
    before any memory is set aside for them (a damaged Rows or Columns could claim 8 GB)."""
    if h.transfer_syntax not in UNCOMPRESSED_SYNTAXES or h.transfer_syntax.endswith(".99"):
        return  # compressed (or deflated): the decoder checks the size it finds
    claimed = h.rows * h.columns * h.samples_per_pixel * max(h.bits_allocated // 8, 1)
    claimed *= h.number_of_frames
    try:
        size = h.path.stat().st_size
    except OSError as exc:
        raise SeriesError(f"Could not read '{h.path}': {exc.strerror or exc}.") from exc
    if claimed > size:
        raise SeriesError(
            f"The pixel data of '{h.path}' is truncated or its header is damaged: "
            f"{h.columns}×{h.rows} pixels{'' if h.number_of_frames == 1 else ' per frame'} "
            f"need {claimed} bytes, the file has {size}."
        )


def memory_limit_bytes() -> int:
    """The memory a volume may take: physical memory, or less if this process is limited
    (POSIX; elsewhere no limit is known and only a failed allocation stops a load)."""
    limit = 2**62
    try:
        limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft)
    except (AttributeError, ImportError, OSError, ValueError):
        pass
    return int(limit)


def _allocate(shape: tuple[int, int, int], where: str) -> np.ndarray:
    """The int16 HU array, refused with a clear message when it cannot fit in memory."""
    needed = int(np.prod(shape, dtype=np.float64)) * 2
    limit = memory_limit_bytes()
    if needed > limit // 2:  # loading needs the array and about as much again
        raise SeriesError(
            f"The series in {where} is too large to load: {shape[2]}×{shape[1]} pixels × "
            f"{shape[0]} slices need {needed / 2**30:.1f} GB, this computer has "
            f"{limit / 2**30:.1f} GB."
        )
    try:
        return np.empty(shape, dtype=np.int16)
    except MemoryError as exc:
        raise SeriesError(
            f"Not enough free memory to load the series in {where} "
            f"({needed / 2**30:.1f} GB): close other programs and try again."
        ) from exc


def read_slices(
    stack: list[ImageHeader], progress: Progress, where: str = "the folder"
) -> tuple[np.ndarray, int]:
    """HU array ``[k, j, i]`` of the images in ``stack`` order, and the count of pixels
    clipped to the int16 range (only corrupt rescale values cause any).

    The first image is read before the array is made, so that a header claiming an
    absurd size fails on its own file, with its name, instead of as a MemoryError.
    """
    total = len(stack)
    first = stack[0]
    for h in stack:
        _check_claimed_size(h)
    cache = _FrameCache()
    clipped_total = 0

    def stored_of(h: ImageHeader) -> np.ndarray:
        if h.pixel_offset is not None and h.samples_per_pixel == 1:
            stored = _read_native(h)
        else:
            stored = cache.get(h)
        if stored.shape != (first.rows, first.columns):
            raise SeriesError(
                f"'{h.path}' has {_size(stored.shape)} pixels where the series "
                f"has {first.columns}×{first.rows}."
            )
        return stored

    progress.report(0, total, "Reading pixel data")
    first_stored = stored_of(first)
    out = _allocate((total, first.rows, first.columns), where)
    clipped_total += _to_hu(first_stored, first, out[0])
    del first_stored

    def one(k: int) -> int:
        return _to_hu(stored_of(stack[k]), stack[k], out[k])

    multiframe = any(h.frame is not None for h in stack)
    workers = 1 if multiframe else min(os.cpu_count() or 1, 8)
    if workers == 1 or total <= 2:
        for k in range(1, total):
            clipped_total += one(k)
            if k % 8 == 7 or k == total - 1:
                progress.report(k + 1, total, "Reading pixel data")
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for n, clipped in enumerate(pool.map(one, range(1, total)), 2):
                clipped_total += clipped
                if n % 8 == 0 or n == total:
                    progress.report(n, total, "Reading pixel data")
    return out, clipped_total


def _size(shape: tuple[int, ...]) -> str:
    """"columns×rows" of a decoded image's shape (rows, columns[, samples])."""
    return f"{shape[1]}×{shape[0]}" if len(shape) >= 2 else "×".join(map(str, shape))
