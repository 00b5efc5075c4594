"""Progress reporting and cancellation for long operations, without Qt.

Long work in `planning` (loading, segmentation, export) takes an optional `Progress` so the
GUI can show a progress bar and a Cancel button while the CLI and tests pass nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from planning.errors import Cancelled

ProgressCallback = Callable[[int, int, str], None]
"""Called as ``callback(done, total, message)``; must be cheap and thread-safe."""


@dataclass
class Progress:
    """A progress sink plus a cancel flag that the worker polls between units of work."""

    callback: ProgressCallback | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, done: int, total: int, message: str = "") -> None:
        """Tell the listener how far we are, then raise `Cancelled` if cancel was asked."""
        if self.callback is not None:
            self.callback(done, total, message)
        self.check_cancelled()

    def cancel(self) -> None:
        """Ask the worker to stop at its next check (safe to call from any thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise `Cancelled` if the user pressed Cancel."""
        if self._cancel.is_set():
            raise Cancelled("Cancelled by the user.")

    def part(self, start: int, span: int, total: int) -> Progress:
        """A Progress for one part of this job: its own 0..n maps onto ``start`` ..
        ``start + span`` of ``total`` here, and Cancel here cancels it too.

        Why: a step of a job (the report's DRRs inside an export) reports its own fine
        progress without knowing the job's other steps, and the bar still moves forward only.
        """
        def relay(done: int, part_total: int, message: str) -> None:
            fraction = done / part_total if part_total else 1.0
            if self.callback is not None:
                self.callback(start * 100 + round(span * 100 * fraction), total * 100, message)

        return Progress(callback=relay, _cancel=self._cancel)


def no_progress() -> Progress:
    """A Progress that reports nowhere and is never cancelled."""
    return Progress()
