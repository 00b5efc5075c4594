"""The test servers' ports (`orthanc_pacs.free_ports`): chosen together, never one twice
(Orthanc was once given the same port for DICOM and HTTP and would not start)."""

from __future__ import annotations

import socket

from orthanc_pacs import free_ports


def test_ports_chosen_together_differ_and_are_free() -> None:
    for _ in range(20):
        ports = free_ports(3)
        assert len(set(ports)) == 3
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[0]))  # nothing holds it once chosen
