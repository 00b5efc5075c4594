"""Cycles are collected on the GUI thread while a window is open (`app.gui_gc`).

A Qt object in a reference cycle, dropped on the GUI thread while a pool thread allocates,
must be destroyed on the GUI thread: with Python's automatic collection the pool thread that
crosses the threshold collects it there.
"""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QObject

from app.gui_gc import GuiThreadCollector, hold_gui_thread_gc


class _Cyclic(QObject):
    """A QObject that holds itself (through a closure, as a signal's slot would); records
    the thread it was freed on (its C++ object dies with its Python wrapper, which owns it)."""

    def __init__(self, died_in: list[str]) -> None:
        super().__init__()
        self.me = lambda: self
        weakref.finalize(self, lambda: died_in.append(threading.current_thread().name))


def _allocate_in_a_pool_thread() -> None:
    """Enough container objects to cross generation 0's threshold many times over."""
    def churn() -> None:
        junk = []
        for _ in range(50):
            junk = [[i] for i in range(2000)]
        del junk

    worker = threading.Thread(target=churn, name="pool")
    worker.start()
    worker.join()


def test_a_qt_cycle_dies_on_the_gui_thread_while_collection_is_held(qtbot) -> None:
    gc.collect()
    release = hold_gui_thread_gc()
    try:
        assert not gc.isenabled()
        died_in: list[str] = []
        _Cyclic(died_in)  # dropped at once: only the collector can free it
        _allocate_in_a_pool_thread()
        assert died_in == []  # the pool thread collected nothing
        qtbot.waitUntil(lambda: died_in != [], timeout=5000)  # the timer's collection
        assert died_in == [threading.main_thread().name]
    finally:
        release()


def test_automatic_collection_would_free_it_on_the_pool_thread() -> None:
    """The hazard itself, shown without the collector (so the test above means something);
    automatic collection is switched on for it whatever an earlier test left open."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.enable()
    try:
        died_in: list[str] = []
        _Cyclic(died_in)
        _allocate_in_a_pool_thread()
        assert died_in == ["pool"]
    finally:
        if not was_enabled:
            gc.disable()


def test_holds_nest_and_release_once_each(qtbot) -> None:
    collector = GuiThreadCollector()
    first, second = collector.hold(), collector.hold()
    first()
    first()  # a second release of the same hold changes nothing
    assert collector.active and not gc.isenabled()
    second()
    assert not collector.active and gc.isenabled()


def test_a_window_holds_collection_until_it_closes(qtbot, monkeypatch) -> None:
    from app import gui_gc
    from tests.app.gui_helpers import open_window

    window = open_window(qtbot, monkeypatch)
    collector = gui_gc._COLLECTOR
    assert collector is not None and collector.active and not gc.isenabled()
    holders = collector._holders
    window.close()
    assert collector._holders == holders - 1
