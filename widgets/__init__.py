"""Thin Qt widgets and VTK views: they draw the state they are given and emit user intent.

pyvistaqt imports Qt through qtpy, which would pick whichever binding it finds first; the
project uses PySide6 only, so the choice is pinned here, before any widget module loads.
"""

import os

os.environ.setdefault("QT_API", "pyside6")
