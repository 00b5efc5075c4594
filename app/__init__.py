"""The application layer: main window, controller, worker threads, error boundary, CLI.

Only this layer starts long work (in worker threads) and owns the current Volume.
"""

import os

os.environ.setdefault("QT_API", "pyside6")  # pyvistaqt reads it through qtpy


from planning.version import __version__

__all__ = ["__version__"]
