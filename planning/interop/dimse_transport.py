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
  waits for the answer, by a flag the thread sets before it stops. Under load the flag can
  still be up from the *previous* pause when the next request goes out; the thread then
  wakes, takes the answer off the queue, logs "Received unexpected C-STORE service
  message" and drops it, and the request waits out its whole timeout (reproduced: 1 send
  of 150 images in 3 on a busy machine; seen before as a 30 s stall in an export). Here the
  thread puts such an answer back for the request that waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from pynetdicom.association import Association

log = logging.getLogger(__name__)

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def tune_association(assoc: Association) -> None:
    """Make ``assoc`` answer without TCP's delays and keep the answers its own requests
    wait for. Call it as soon as the association has a socket (requestor: once
    established; acceptor: at ``EVT_CONN_OPEN``); calling it again does nothing more."""
    if getattr(assoc, "_vertebroplan_tuned", False):
        return
    assoc._vertebroplan_tuned = True  # type: ignore[attr-defined]
    _no_transport_delays(assoc)
    _keep_waited_for_answers(assoc)


def on_connection_open(event: Any) -> None:
    """An ``EVT_CONN_OPEN`` handler for a server's associations (`tune_association`)."""
    tune_association(event.assoc)


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


def _keep_waited_for_answers(assoc: Association) -> None:
    serve = assoc._serve_request

    def serve_or_hand_back(msg: Any, context_id: int) -> None:
        waiting = not assoc._reactor_checkpoint.is_set()  # a send_*() is waiting
        if waiting and not msg.is_valid_request and msg.is_valid_response:
            log.debug("handed a %s back to the request waiting for it", msg.msg_type)
            assoc.dimse.msg_queue.put((context_id, msg))
            return
        serve(msg, context_id)

    assoc._serve_request = serve_or_hand_back  # type: ignore[method-assign]
