"""One error boundary per user action: show a dialog, log the traceback, never crash.

Domain errors (`VertebroPlanError`) carry a message written for the user that names the file,
so it is shown as is. Anything else is a bug: the user gets a short message and the full
traceback goes to the log. Logs never contain the message of a domain error, because file
and folder names can contain the patient's name.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from planning.errors import Cancelled, VertebroPlanError

log = logging.getLogger("vertebroplan")

F = TypeVar("F", bound=Callable[..., Any])


def user_message(action: str, exc: BaseException) -> str:
    """The text shown to the user for an exception raised while doing ``action``."""
    if isinstance(exc, VertebroPlanError):
        return str(exc)
    return (
        f"An unexpected error occurred while {action} ({type(exc).__name__}).\n\n"
        "Nothing was changed. The details were written to the log; please report them."
    )


def report_error(parent: QWidget | None, action: str, exc: BaseException) -> QMessageBox | None:
    """Log the error and show it in a window-modal message box (non-blocking).

    Returns the box (or None for a cancelled action, which is not an error).
    """
    if isinstance(exc, Cancelled):
        log.info("%s: cancelled by the user", action)
        return None
    if isinstance(exc, VertebroPlanError):
        log.warning("%s failed: %s", action, type(exc).__name__)
        title, icon = "Cannot complete the action", QMessageBox.Icon.Warning
    else:
        log.error("Unexpected error while %s", action,
                  exc_info=(type(exc), exc, exc.__traceback__))
        title, icon = "Unexpected error", QMessageBox.Icon.Critical
    box = QMessageBox(icon, title, user_message(action, exc), QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("errorBox")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.show()
    return box


@contextmanager
def error_boundary(parent: QWidget | None, action: str) -> Iterator[None]:
    """Run a user action; any exception becomes a dialog instead of a crash."""
    try:
        yield
    except Exception as exc:  # the boundary: everything is shown and logged, nothing lost
        report_error(parent, action, exc)


def guarded(action: str) -> Callable[[F], F]:
    """Decorate a QWidget method (a slot) with an error boundary around its body."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: QWidget, *args: Any, **kwargs: Any) -> Any:
            with error_boundary(self, action):
                return method(self, *args, **kwargs)
            return None

        return wrapper  # type: ignore[return-value]

    return decorate


def install_excepthook(parent: QWidget) -> None:
    """Send exceptions that escape Qt slots and event handlers to the error dialog.

    PySide6 prints such exceptions and carries on; this makes them visible to the user and
    logged with their traceback instead. While one unexpected-error box is open no further
    box is shown, so a failure that repeats (in a paint event, say) cannot flood the screen.
    """
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        if not isinstance(exc, Exception):
            previous(exc_type, exc, tb)
            return
        if exc.__traceback__ is None:
            exc = exc.with_traceback(tb)
        if any(w.objectName() == "errorBox" and w.isVisible()
               for w in QApplication.topLevelWidgets()):
            log.error("Further unexpected error", exc_info=(exc_type, exc, tb))
            return
        report_error(parent, "handling the last action", exc)

    sys.excepthook = hook
