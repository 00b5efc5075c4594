"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin on loopback.

A pytest plugin (``pytest_plugins`` in tests/conftest.py): `filled_pacs` is one Orthanc
for the whole run, filled once with three patients (below), started only when a test asks.

`running_orthanc` writes a configuration into a temporary folder (DIMSE on one free port,
HTTP with DICOMweb on another, this workstation's storage SCP as the C-MOVE destination) and
starts ``Orthanc`` as its own process; `fill` sends generated CT series to it by C-STORE.
Nothing is mocked: every query and retrieval in the tests crosses a socket to Orthanc.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.uid import generate_uid

from planning.interop.send import RemoteAE, send
from planning.io.dicom_write import write_series
from planning.pacs.node import LocalAE, WebNode
from planning.volume import PatientInfo, Volume

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_INSTALLED = shutil.which("Orthanc") is not None and DICOMWEB_PLUGIN.exists()


def free_ports(n: int) -> list[int]:
    """``n`` different TCP ports on 127.0.0.1 that nothing listens on right now.

    Held open together while they are chosen: one at a time, the system may hand out the
    same port twice (Orthanc's DICOM and HTTP ports once came out equal, and it failed
    with "already in use")."""
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                for _ in range(n)]
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in held]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """End a server a test started, through its own handle: ask it to stop, give it
    ``grace_s`` seconds, then kill it; either way it is reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class Orthanc:
    """A running Orthanc: its DICOM node, its DICOMweb base URL, and who it moves to."""

    dimse: RemoteAE
    web: WebNode
    http: str
    local: LocalAE
    folder: Path

    def rest(self, path: str, method: str = "GET", body: str | None = None) -> Any:
        request = urllib.request.Request(f"{self.http}{path}", method=method,
                                         data=None if body is None else body.encode())
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None


def _wait(http: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{http}/system", timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"Orthanc did not answer within 30 s:\n{log.read_text()}")


@contextlib.contextmanager
def running_orthanc(folder: Path, *, local_ae: str = "VERTEBROPLAN",
                    allow_unknown_find: bool = True) -> Iterator[Orthanc]:
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):  # a port chosen free may be taken before Orthanc binds it
        try:
            proc, ports = _started(folder, local_ae, allow_unknown_find)
            break
        except RuntimeError as exc:
            if "already in use" not in str(exc) or attempt == 2:
                raise
    dicom_port, http_port, scp_port = ports
    http = f"http://127.0.0.1:{http_port}"
    try:
        yield Orthanc(RemoteAE("ORTHANC", "127.0.0.1", dicom_port),
                      WebNode(f"{http}/dicom-web"), http, LocalAE(local_ae, scp_port), folder)
    finally:
        stop_process(proc, grace_s=10)


def _started(folder: Path, local_ae: str, allow_unknown_find: bool
             ) -> tuple[subprocess.Popen[bytes], list[int]]:
    """Orthanc started on three fresh ports and answering, with those ports."""
    ports = free_ports(3)
    dicom_port, http_port, scp_port = ports
    config = {
        "Name": "VertebroPlan test PACS",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        # a caller it does not know may search and move (so a C-MOVE to it meets "unknown
        # destination", not a refusal)
        "DicomAlwaysAllowFind": allow_unknown_find,
        "DicomAlwaysAllowMove": allow_unknown_find,
        "DicomModalities": {"workstation": [local_ae, "127.0.0.1", scp_port]},
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StorageCompression": False,
        "SyncStorageArea": False,
        "MaximumStorageCacheSize": 0,  # read each image from disk (a lost file is lost)
        "DicomScpTimeout": 10,
        "HttpServerEnabled": True,
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1))
    log = folder / "orthanc.log"
    http = f"http://127.0.0.1:{http_port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        _wait(http, proc, log)
    except BaseException:
        stop_process(proc, grace_s=10)
        raise
    return proc, ports


def generated_ct(patient: PatientInfo, *, slices: int = 12, size: int = 48,
                 modality: str = "CT", seed: int = 0) -> Volume:
    """A small CT with a bright cylinder ("spine") so a retrieved series can be checked."""
    rng = np.random.default_rng(seed)
    array = rng.normal(0, 15, (slices, size, size)).astype(np.int16)
    yy, xx = np.mgrid[:size, :size]
    array[:, (yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 6) ** 2] += 700
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    affine[:3, 3] = (-20.0, -30.0, 100.0)
    return Volume(array=array, affine_lps=affine, modality=modality, patient=patient)


def fill(pacs: Orthanc, folder: Path, volume: Volume, description: str,
         series_number: int = 1) -> list[Path]:
    """Write ``volume`` as a series and C-STORE it to the PACS; returns the files."""
    paths = write_series(volume, folder, series_description=description,
                         series_number=series_number)
    report = send(pacs.dimse, paths)
    assert report.ok, str(report)
    return paths


@dataclass
class FilledPacs:
    """The shared test PACS and the UIDs it holds:

    - DOE^JOHN (P001, born 19600101): a 2024 CT study (accession ACC1) with a 14-image CT
      series and a 6-image series of modality OT;
    - DOE^JANE (P002, born 19650505): a 2023 CT study (ACC2), 10 images;
    - SMITH^ANNA (P003): a 2022 MR study (ACC3), which a CT search must not list.
    """

    pacs: Orthanc
    john_study: str
    john_ct: str
    john_other: str
    jane_study: str
    jane_ct: str
    anna_study: str
    john_files: list[Path]


def _patient(name: str, pid: str, born: str, sex: str, date: str, what: str,
             accession: str) -> PatientInfo:
    return PatientInfo(name=name, patient_id=pid, birth_date=born, sex=sex, study_date=date,
                       study_description=what, accession_number=accession)


@pytest.fixture(scope="session")
def filled_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilledPacs]:
    if not ORTHANC_INSTALLED:
        pytest.skip("Orthanc and its DICOMweb plugin are not installed (make sysdeps "
                    "installs them)")
    base = tmp_path_factory.mktemp("orthanc")
    uid = {key: generate_uid() for key in ("john", "john_ct", "john_other", "jane", "jane_ct",
                                           "anna", "anna_mr")}
    john = _patient("DOE^JOHN", "P001", "19600101", "M", "20240310", "CT spine", "ACC1")
    jane = _patient("DOE^JANE", "P002", "19650505", "F", "20230705", "CT abdomen", "ACC2")
    anna = _patient("SMITH^ANNA", "P003", "19700303", "F", "20221120", "MR spine", "ACC3")
    with running_orthanc(base / "pacs") as pacs:
        john_files = fill(pacs, base / "john_ct", replace(
            generated_ct(john, slices=14, seed=1), study_uid=uid["john"],
            series_uid=uid["john_ct"]), "CT spine 2 mm", 2)
        fill(pacs, base / "john_other", replace(
            generated_ct(john, slices=6, modality="OT", seed=2), study_uid=uid["john"],
            series_uid=uid["john_other"]), "Scout", 1)
        fill(pacs, base / "jane_ct", replace(
            generated_ct(jane, slices=10, seed=3), study_uid=uid["jane"],
            series_uid=uid["jane_ct"]), "CT abdomen 3 mm")
        fill(pacs, base / "anna_mr", replace(
            generated_ct(anna, slices=5, modality="MR", seed=4), study_uid=uid["anna"],
            series_uid=uid["anna_mr"]), "T2 sagittal")
        yield FilledPacs(pacs, uid["john"], uid["john_ct"], uid["john_other"], uid["jane"],
                         uid["jane_ct"], uid["anna"], john_files)


__all__ = ["ORTHANC_INSTALLED", "FilledPacs", "Orthanc", "fill", "filled_pacs", "free_port",
           "free_ports", "generated_ct", "running_orthanc"]
