"""File ▸ Open from PACS…: runs the dialog's searches, thumbnails and retrievals in the
background and opens the retrieved CT.

Why a class of its own: the dialog stays a thin view, and the window only learns "open this
folder, it came from that node" through the ``open_ct`` callback, never the PACS logic.
Every job runs in a pool thread with progress and cancel; answers from a superseded job
(a newer search, a closed dialog) are dropped (one `JobSlot` per kind of job).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QThreadPool
from PySide6.QtWidgets import QWidget

from app.settings import local_ae, pacs_nodes, retrieve_method
from app.workers import JobSlot, Worker
from planning.errors import Cancelled
from planning.pacs.cache import StudyCache
from planning.pacs.node import LocalAE, parse_node
from planning.pacs.records import RetrieveReport, StudyQuery, StudyRecord
from planning.progress import Progress
from widgets.pacs_dialog import PacsDialog
from widgets.pacs_settings import PacsSettings

log = logging.getLogger(__name__)
OpenCt = Callable[[str, str | None, str], None]
"""open_ct(folder, series_uid, node_text): the window opens the retrieved CT."""
CACHE_LIMIT_GB = 20.0


def study_cache(settings: QSettings) -> StudyCache:
    """The user's study cache with its size limit (Settings; 20 GB by default)."""
    try:
        limit_gb = float(settings.value("pacs/cache_gb", CACHE_LIMIT_GB))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        limit_gb = CACHE_LIMIT_GB
    return StudyCache(limit_bytes=int(max(limit_gb, 0.5) * 1024**3))


class PacsBrowser(QObject):
    """Owns one `PacsDialog` and the jobs it starts."""

    def __init__(self, parent: QWidget, settings: QSettings, open_ct: OpenCt) -> None:
        super().__init__(parent)
        self.settings = settings
        self.open_ct = open_ct
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)  # a retrieval and the thumbnails side by side
        self.cache = study_cache(settings)
        self.dialog = PacsDialog(pacs_nodes(settings), parent)
        self._jobs: dict[str, JobSlot] = {}
        self._answers: dict[str, tuple[Callable[[Any], None],
                                       Callable[[BaseException], None]]] = {}
        d = self.dialog
        d.search_requested.connect(self._search)
        d.test_requested.connect(self._test)
        d.thumbnails_requested.connect(self._thumbnails)
        d.retrieve_requested.connect(self._retrieve)
        d.cancel_requested.connect(self._cancel_retrieval)
        d.finished.connect(lambda _code: self.cancel_all())

    def show(self) -> None:
        """Show the dialog with the nodes as Settings have them now."""
        self.dialog.set_nodes(pacs_nodes(self.settings))
        self.dialog.show()
        self.dialog.raise_()

    # ---- jobs -------------------------------------------------------------------------
    def _start(self, kind: str, job: Callable[[Progress], Any],
               done: Callable[[Any], None], failed: Callable[[BaseException], None]) -> None:
        """Run ``job`` in the pool; only the newest job of each ``kind`` may answer, with
        ``done(result)`` or ``failed(exception)``."""
        slot = self._jobs.get(kind)
        if slot is None:
            slot = self._jobs[kind] = JobSlot(self.pool, self)
            slot.succeeded.connect(lambda result: self._answers[kind][0](result))
            slot.failed.connect(lambda exc: self._answers[kind][1](exc))
            if kind == "retrieve":
                slot.progressed.connect(self.dialog.show_progress)
        self._answers[kind] = (done, failed)
        slot.start(job)

    def cancel_all(self) -> None:
        for slot in self._jobs.values():
            slot.forget()

    def _fail(self, exc: BaseException) -> None:
        self.dialog.show_busy(False)
        if isinstance(exc, Cancelled):
            self.dialog.show_message(str(exc), ok=None)
            return
        log.info("PACS action failed: %s", type(exc).__name__)
        self.dialog.show_message(str(exc), ok=False)

    def _search(self, node_text: str, query: StudyQuery) -> None:
        local = local_ae(self.settings)

        def job(_progress: Progress) -> list[StudyRecord]:
            from planning.pacs.retrieve import find_studies

            return find_studies(parse_node(node_text), query, local=local, timeout_s=30)

        self.dialog.show_busy(True, "Searching…")
        self._start("search", job, self._found, self._fail)

    def _found(self, studies: list[StudyRecord]) -> None:
        self.dialog.show_busy(False)
        self.dialog.show_studies(studies)

    def _test(self, node_text: str) -> None:
        local = local_ae(self.settings)

        def job(_progress: Progress) -> float:
            from planning.pacs.retrieve import echo

            return echo(parse_node(node_text), local=local, timeout_s=10)

        self._start("test", job, lambda s: self.dialog.show_message(
            f"{node_text} answers ({s * 1000:.0f} ms).", ok=True), self._fail)

    def _thumbnails(self, node_text: str, study: StudyRecord) -> None:
        local, method, cache = local_ae(self.settings), retrieve_method(self.settings), \
            self.cache

        def job(progress: Progress) -> list[tuple[str, Any]]:
            from planning.pacs.retrieve import middle_image
            from planning.pacs.thumbnail import thumbnail

            node = parse_node(node_text)
            out = []
            for series in study.series:
                progress.check_cancelled()
                try:
                    path = middle_image(node, study.study_uid, series.series_uid, cache,
                                        method=method, local=local, timeout_s=15)
                except Exception as exc:
                    log.info("thumbnail not retrieved: %s", type(exc).__name__)
                    path = None
                out.append((series.series_uid, None if path is None else thumbnail(path)))
            return out

        def show(results: list[tuple[str, Any]]) -> None:
            for uid, grey in results:
                self.dialog.set_thumbnail(uid, grey)

        self._start("thumbnails", job, show, lambda _exc: None)

    def _retrieve(self, node_text: str, study: StudyRecord, series_uid: str) -> None:
        local, method, cache = local_ae(self.settings), retrieve_method(self.settings), \
            self.cache

        def job(progress: Progress) -> list[RetrieveReport]:
            from planning.pacs.retrieve import retrieve

            cache.sweep_partials()
            reports = retrieve(parse_node(node_text), study.study_uid, cache,
                               series_uid=series_uid, method=method, local=local,
                               progress=progress)
            cache.touch(study.study_uid)
            cache.evict(keep={study.study_uid})  # and every pinned (unsaved) study
            return reports

        self.dialog.show_busy(True, "Retrieving…")
        self._start("retrieve", job, lambda r: self._retrieved(node_text, series_uid, r),
                    self._fail)

    def _cancel_retrieval(self) -> None:
        for kind in ("retrieve", "search"):
            slot = self._jobs.get(kind)
            if slot is not None and slot.busy:
                slot.cancel()
                self.dialog.show_message("Cancelling…")
                return

    def _retrieved(self, node_text: str, series_uid: str,
                   reports: list[RetrieveReport]) -> None:
        self.dialog.show_busy(False)
        report = reports[0]
        if report.missing:
            self.dialog.show_message(
                f"The retrieval partly failed: {report.describe()}. Retrieve again to fetch "
                "only what is missing.", ok=False)
            return
        self.dialog.show_message(f"{report.describe()} — opening.", ok=True)
        self.dialog.accept()
        self.open_ct(str(Path(report.folder)), series_uid, node_text)


def pacs_settings_page(settings: QSettings) -> PacsSettings:
    """Settings ▸ PACS, whose Test runs C-ECHO (or a QIDO-RS search) in the background."""
    local = local_ae(settings)
    page = PacsSettings(pacs_nodes(settings), local.ae_title, local.port,
                        retrieve_method(settings))

    def test(node_text: str) -> None:
        def job(_progress: Progress) -> float:
            from planning.pacs.retrieve import echo

            return echo(parse_node(node_text), local=LocalAE(page.ae_title(), page.port()),
                        timeout_s=10)

        worker = Worker(job, 0)
        worker.signals.succeeded.connect(lambda _t, seconds: page.show_test_result(
            True, f"{node_text} answers ({seconds * 1000:.0f} ms)."))
        worker.signals.failed.connect(lambda _t, exc: page.show_test_result(False, str(exc)))
        page.test_worker = worker  # kept alive while it runs
        QThreadPool.globalInstance().start(worker)

    page.test_requested.connect(test)
    return page
