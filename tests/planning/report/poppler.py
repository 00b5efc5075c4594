"""Test helper: a PDF read back as a reader's viewer would, with poppler-utils.

``pdftotext`` gives the text a reader could copy, ``pdftoppm`` the pages as pictures; the
report tests skip as a whole (`NEEDS_POPPLER`) where either tool is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NEEDS_POPPLER = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) is not installed",
)


def pdf_text(pdf: Path) -> str:
    """The whole text of ``pdf``, UTF-8, pages in order."""
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True,
                         capture_output=True)
    return out.stdout.decode("utf-8")


def pdf_pages(pdf: Path, folder: Path, dpi: int, stem: str = "page") -> list[Path]:
    """Every page of ``pdf`` rendered at ``dpi`` as ``folder/stem-N.png``, in page order."""
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(folder / stem)],
                   check=True, capture_output=True)
    return sorted(folder.glob(f"{stem}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
