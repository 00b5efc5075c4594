"""Putting a widget on the test's virtual screen the way every GUI test does it.

Why one function: each GUI test module wrote the same five lines (register with qtbot,
size, show, wait until exposed); a widget measured or painted before it is exposed gives
empty pictures, so the waiting must not be forgotten in any of them.
"""

from __future__ import annotations

from typing import Any, TypeVar

W = TypeVar("W")


def on_screen(qtbot: Any, widget: W, width: int, height: int) -> W:
    """``widget`` registered with ``qtbot`` (closed after the test), ``width`` × ``height``
    pixels, shown and exposed on the virtual screen."""
    qtbot.addWidget(widget)
    widget.resize(width, height)  # type: ignore[attr-defined]
    widget.show()  # type: ignore[attr-defined]
    qtbot.waitExposed(widget)
    return widget
