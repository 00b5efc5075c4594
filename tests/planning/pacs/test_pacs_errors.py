"""What a user reads when the PACS is not there, not listening, silent, or mistyped."""

from __future__ import annotations

import socket
import threading

import pytest
from orthanc_pacs import free_port

from planning.interop.send import RemoteAE, SendError
from planning.pacs.node import LocalAE, PacsError, RemoteAEError, WebNode, parse_node
from planning.pacs.records import StudyQuery
from planning.pacs.retrieve import echo, find_studies


def test_node_text_is_parsed_to_dimse_or_web() -> None:
    assert parse_node("PACS@10.0.0.5:104") == RemoteAE("PACS", "10.0.0.5", 104)
    assert parse_node(" http://pacs.local:8042/dicom-web/ ") == \
        WebNode("http://pacs.local:8042/dicom-web")
    for bad, words in (("pacs.local:104", "AE_TITLE@HOST:PORT"),
                       ("ftp://x/dicom-web", "not a DICOMweb address"),
                       ("PACS@host", "no port")):
        with pytest.raises(RemoteAEError, match=words):
            parse_node(bad)
    with pytest.raises(RemoteAEError, match="at most 16"):
        LocalAE("A_VERY_LONG_AE_TITLE_X", 11112)


def test_nothing_listening_is_said_for_both_kinds() -> None:
    port = free_port()
    with pytest.raises(SendError, match=r"Connection refused .* no DICOM server is listening"):
        find_studies(RemoteAE("PACS", "127.0.0.1", port), StudyQuery(patient_id="1"),
                     timeout_s=3)
    with pytest.raises(PacsError, match="Nothing answers at the DICOMweb service"):
        find_studies(WebNode(f"http://127.0.0.1:{port}/dicom-web"),
                     StudyQuery(patient_id="1"), timeout_s=3)


def _silent_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])  # accept and never answer
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_silent_server_times_out_in_words() -> None:
    server, port = _silent_server()
    try:
        with pytest.raises(SendError, match="within 1 s"):
            echo(RemoteAE("PACS", "127.0.0.1", port), timeout_s=1)
        with pytest.raises(PacsError, match="did not answer within 1 s"):
            echo(WebNode(f"http://127.0.0.1:{port}/dicom-web"), timeout_s=1)
    finally:
        server.close()


def test_wrong_ae_title_and_wrong_web_path(filled_pacs) -> None:
    pacs = filled_pacs.pacs
    wrong = RemoteAE("NOTORTHANC", pacs.dimse.host, pacs.dimse.port)
    with pytest.raises(SendError, match="does not call itself 'NOTORTHANC'"):
        echo(wrong, local=pacs.local)
    with pytest.raises(PacsError, match=r"no DICOMweb service at that path \(HTTP 404"):
        find_studies(WebNode(pacs.http + "/not-dicom-web"), StudyQuery(patient_id="P001"))
