"""The application layer: main window, controller, worker threads, error boundary, CLI.

Only this layer starts long work (in worker threads) and owns the current Volume.
"""

import os

os.environ.setdefault("QT_API", "pyside6")  # pyvistaqt reads it through qtpy


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vertebroplan")
    except PackageNotFoundError:  # run from a source tree or a frozen bundle
        return "0.1.0"


__version__ = _version()
