"""What every DICOM association VertebroPlan opens or accepts needs beyond pynetdicom's
defaults: a transport that does not wait on TCP's timers, and no lost answers.

Why, measured on loopback (a 512 × 512 CT image per C-STORE):

- **Timers.** A DIMSE message leaves as several small writes, and most PACS (DCMTK's
  storescp and Orthanc as Debian ships them) answer the same way. With Nagle's algorithm
  each side holds its second write until the first is acknowledged, and Linux delays that
  acknowledgement by 40 ms: 82 ms an image whatever its size, a 300-image CT in 25 s. With
  ``TCP_NODELAY`` our writes go at once (44 ms); acknowledging at once as well
  (``TCP_QUICKACK``, re-armed before every read because Linux drops it) releases the
  peer's: 2.8 ms an image, against either server.
- **Lost answers.** pynetdicom 3.0 pauses its association thread while a ``send_*()``
  waits for the answer: the request clears a gate, waits until the thread says "paused",
  sends, and opens the gate when the answer is in. But the thread says "paused" before it
  stops at the gate and "running" only once past it, so when it is slow to get going
  again after the last request (a busy machine), the next request still reads the old
  "paused", goes out, and the thread, running after all, takes the answer off the queue,
  logs "Received unexpected C-STORE service message" and drops it: the request waits out
  its whole timeout (reproduced: 3 sends of 150 images in 10 on a busy machine; seen
  before as a 30 s stall in an export). `_PauseGate` keeps the promise instead: a
  request that closes the gate while the thread is not stopped at it waits for the thread
  to stop there afresh, and a thread released from the gate stays stopped if the gate was
  closed again before it got going. Answers keep their order (a C-FIND's matches arrive
  as several).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

from pynetdicom.association import Association

log = logging.getLogger(__name__)

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def tune_association(assoc: Association) -> None:
    """Make ``assoc`` answer without TCP's delays and keep the answers its own requests
    wait for. Call it as soon as the association has a socket (requestor: once
    established; acceptor: at ``EVT_CONN_OPEN``); calling it again does nothing more."""
    if isinstance(assoc._reactor_checkpoint, _PauseGate):
        return
    _no_transport_delays(assoc)
    assoc._reactor_checkpoint = _PauseGate(assoc)  # type: ignore[assignment]


def on_connection_open(event: Any) -> None:
    """An ``EVT_CONN_OPEN`` handler for a server's associations (`tune_association`)."""
    tune_association(event.assoc)


class _PauseGate:
    """What pynetdicom's association thread stops at while a request waits for its answer
    (its ``_reactor_checkpoint``, a `threading.Event` there), with the pause flag kept in
    step under one lock.

    - ``clear()`` (a request wants the thread stopped): if the thread is not waiting at the
      gate, its "paused" flag is stale or about to be, so it is lowered; the request then
      waits until the thread raises it at the gate.
    - ``wait()`` (the thread at the gate): raises "paused" under the lock and returns only
      while the gate is open, so a thread woken by the last ``set()`` but beaten to the lock
      by the next ``clear()`` stays stopped.
    """

    def __init__(self, assoc: Association) -> None:
        self._assoc = assoc
        self._lock = threading.Condition(threading.Lock())
        self._open = True
        self._waiting = 0

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        with self._lock:
            self._open = True
            self._lock.notify_all()

    def clear(self) -> None:
        with self._lock:
            self._open = False
            if self._waiting == 0:
                self._assoc._is_paused = False

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            self._waiting += 1
            self._assoc._is_paused = True
            try:
                return self._lock.wait_for(lambda: self._open, timeout)
            finally:
                self._waiting -= 1


def _no_transport_delays(assoc: Association) -> None:
    wrapper = assoc.dul.socket
    raw = getattr(wrapper, "socket", None)
    if wrapper is None or raw is None:
        return
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:  # not TCP (a test double): nothing to tune
        log.debug("TCP_NODELAY not set: %s", exc)
        return
    if _QUICKACK is None:
        return
    receive = wrapper.recv

    def recv_acknowledging_at_once(nr_bytes: int) -> bytearray:
        sock = wrapper.socket
        if sock is not None:
            with contextlib.suppress(OSError):  # closing: the read below reports it
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return receive(nr_bytes)

    wrapper.recv = recv_acknowledging_at_once  # type: ignore[method-assign]
