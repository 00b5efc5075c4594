"""Run long `planning` work in a thread pool, reporting progress through Qt signals.

Why a QRunnable with a signals object: `planning` functions take a `Progress` whose callback
runs in the worker thread; emitting a signal from it is the thread-safe way to reach the GUI
thread (queued connection), and `Progress.cancel()` is safe from any thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

from planning.progress import Progress

PROGRESS_INTERVAL_S = 0.05
"""At most ~20 progress updates a second reach the GUI; more would only cost repaints."""


class WorkerSignals(QObject):
    """Signals of one job; ``token`` tells the receiver which request the job belongs to."""

    progressed = Signal(int, int, int, str)  # token, done, total, message
    succeeded = Signal(int, object)  # token, result
    failed = Signal(int, object)  # token, exception (with its traceback attached)


class Worker(QRunnable):
    """Calls ``job(progress)`` in a pool thread and emits the outcome."""

    def __init__(self, job: Callable[[Progress], Any], token: int) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python keeps the reference until the job has reported
        self.token = token
        self.signals = WorkerSignals()
        self.progress = Progress(callback=self._on_progress)
        self._job: Callable[[Progress], Any] | None = job
        self._last_emit = 0.0
        self._last_message = ""
        self.done = False

    def _on_progress(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if (now - self._last_emit >= PROGRESS_INTERVAL_S or message != self._last_message
                or done >= total):
            self._last_emit, self._last_message = now, message
            if not self._emit(self.signals.progressed, self.token, int(done), int(total),
                              message):
                self.progress.cancel()  # nobody is listening any more: stop the work

    def cancel(self) -> None:
        self.progress.cancel()

    def run(self) -> None:
        job, self._job = self._job, None  # let the inputs (a whole CT) go once done
        try:
            result = job(self.progress)
        except Exception as exc:  # every failure goes to the GUI thread's error boundary
            self._emit(self.signals.failed, self.token, exc)
        else:
            self._emit(self.signals.succeeded, self.token, result)
        finally:
            self.done = True

    @staticmethod
    def _emit(signal: Any, *args: Any) -> bool:
        """Emit, unless the application is already gone (its signal objects deleted while
        this job ran on at exit): then there is nobody to tell, and that is not an error."""
        try:
            signal.emit(*args)
        except RuntimeError:
            return False
        return True
