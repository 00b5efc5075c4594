"""Run long `planning` work in a thread pool, reporting progress through Qt signals.

Why a QRunnable with a signals object: `planning` functions take a `Progress` whose callback
runs in the worker thread; emitting a signal from it is the thread-safe way to reach the GUI
thread (queued connection), and `Progress.cancel()` is safe from any thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

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


class JobSlot(QObject):
    """One kind of background work of which only the newest request counts: loading a CT,
    finding the spine, a proposal, an export, the level assessment, a fluoroscopy batch.

    Why one class: each of those needs the same four things — run in the pool, forward
    progress, cancel the older request when a newer one starts, and drop a result that
    arrives after it was superseded (a token per request) — and each used to write them
    out again with its own token bookkeeping. The workers are kept here until their
    ``run()`` has returned, so a superseded job is never freed while it runs.
    """

    progressed = Signal(int, int, str)  # done, total, message (of the current job only)
    succeeded = Signal(object)  # result
    failed = Signal(object)  # exception (Cancelled when it was cancelled)

    def __init__(self, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._current: Worker | None = None
        self._token = 0
        self._workers: list[Worker] = []

    @property
    def busy(self) -> bool:
        """A job has started and has not reported yet."""
        return self._current is not None

    def start(self, job: Callable[[Progress], Any]) -> None:
        """Run ``job(progress)`` in the pool; a job still running is cancelled, and its
        outcome will be dropped."""
        self.cancel()
        self._workers = [w for w in self._workers if not w.done]
        self._token += 1
        worker = Worker(job, self._token)
        worker.signals.progressed.connect(self._on_progress)
        worker.signals.succeeded.connect(self._on_succeeded)
        worker.signals.failed.connect(self._on_failed)
        self._workers.append(worker)
        self._current = worker
        self._pool.start(worker)

    def cancel(self) -> None:
        """Ask the current job to stop (it reports `failed` with `Cancelled` if it does)."""
        if self._current is not None:
            self._current.cancel()

    def forget(self) -> None:
        """Cancel the current job and drop whatever it reports (its inputs are gone)."""
        self.cancel()
        self._current = None

    def _is_current(self, token: int) -> bool:
        return self._current is not None and self._current.token == token

    @Slot(int, int, int, str)
    def _on_progress(self, token: int, done: int, total: int, message: str) -> None:
        if self._is_current(token):
            self.progressed.emit(done, total, message)

    @Slot(int, object)
    def _on_succeeded(self, token: int, result: object) -> None:
        if self._is_current(token):
            self._current = None
            self.succeeded.emit(result)

    @Slot(int, object)
    def _on_failed(self, token: int, exc: object) -> None:
        if self._is_current(token):
            self._current = None
            self.failed.emit(exc)
