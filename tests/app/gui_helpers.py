"""The main window as the GUI tests open it, and a needle down a demo pedicle.

Why one place: four test modules each built the window the same nine lines long (size,
shown, exposed, the CT and its anatomy set, leaving without the save question).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.controller import Controller
from app.main_window import MainWindow
from planning.anatomy.model import Anatomy
from planning.plan import Side, Trajectory
from planning.volume import Volume
from tests.on_screen import on_screen

WINDOW_SIZE = (1600, 960)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
"""Where the window tests leave their screenshots (compared by `python -m bench.snapshots`)."""


def open_window(qtbot, monkeypatch, volume: Volume | None = None,
                anatomy: Anatomy | None = None) -> MainWindow:
    """The window shown on the virtual screen, with ``volume`` and ``anatomy`` when given;
    closing it never waits for an answer to "save your changes?"."""
    win = on_screen(qtbot, MainWindow(Controller(auto_anatomy=False)), *WINDOW_SIZE)
    monkeypatch.setattr(win.workspace.files, "confirm_discard", lambda _doing: True)
    if volume is not None:
        win.controller.set_volume(volume)
    if anatomy is not None:
        win.controller.set_anatomy(anatomy)
    return win


def pedicle_needle(truth, level: str, side: Side, depth: float = 0.85) -> Trajectory:
    """An 11G needle down the demo truth's pedicle axis, ``depth`` of the way from the
    entry to the anterior cortex."""
    p = truth.level(level).pedicle(side)
    reach = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps))
    return Trajectory(level, side, tuple(p.entry_lps),
                      tuple(p.entry_lps + depth * reach * p.direction_lps), "11G")


def screenshot(qtbot, window: MainWindow, name: str) -> None:
    """Save the window to ``ARTIFACTS/name`` once the 3D bone surface is on screen, so the
    picture shows the same state on every run (`bench.snapshots` compares them)."""
    qtbot.waitUntil(lambda: window.controller.surface is not None, timeout=60000)
    qtbot.wait(100)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(ARTIFACTS / name))
