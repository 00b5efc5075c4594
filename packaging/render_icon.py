"""Render the application icon, resources/vertebroplan.svg, to resources/vertebroplan.png.

The SVG is the source; the PNG (256 × 256, what desktop launchers and the window use) is
rendered from it with Qt's own SVG renderer, so both always show the same drawing:

    .venv/bin/python packaging/render_icon.py [SIZE]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def render(svg: Path, png: Path, size_px: int = 256) -> None:
    """Draw ``svg`` into a transparent ``size_px`` square PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (kept alive)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icon: '{svg}' is not a valid SVG")
    image = QImage(size_px, size_px, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(png)):
        raise SystemExit(f"render_icon: cannot write '{png}'")


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    render(RESOURCES / "vertebroplan.svg", RESOURCES / "vertebroplan.png", size)
    print(f"Written: {RESOURCES / 'vertebroplan.png'} ({size} × {size})")
