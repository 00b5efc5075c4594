"""``vertebroplan batch``: many studies on Dask, one row per level, failures recorded,
reruns resumed; once on a real ``dask scheduler`` and ``dask worker`` started as their own
processes on loopback."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from cli_helpers import run_cli
from orthanc_pacs import free_port

from planning.io.dicom_write import write_series


@pytest.fixture(scope="module")
def demo_inputs(shared_demo_ct, tmp_path_factory) -> dict[str, Path]:
    """A 3-level crop of the demo CT (T12–L2, its L1 fractured) as DICOM, and a file that
    only claims to be NIfTI. (The whole demo CT runs in bench/bench_batch.py.)"""
    volume, truth = shared_demo_ct
    base = tmp_path_factory.mktemp("batch-inputs")
    lps = [truth.level(name).centroid_lps for name in ("T12", "L2")]
    k = sorted(int(np.rint(volume.to_index(p)[2])) for p in lps)
    lo, hi = max(k[0] - 20, 0), min(k[1] + 20, volume.array.shape[0])
    affine = volume.affine_lps.copy()
    affine[:3, 3] = volume.to_lps((0, 0, lo))
    crop = replace(volume, array=np.ascontiguousarray(volume.array[lo:hi]), affine_lps=affine,
                   series_uid="1.2.826.0.1.3680043.10.1389.424.1", source_instances=())
    write_series(crop, base / "crop")
    (base / "broken.nii").write_text("not a NIfTI file")
    return {"crop": base / "crop", "broken": base / "broken.nii"}


def test_local_cluster_table_failure_and_resume(demo_inputs, tmp_path) -> None:
    out = tmp_path / "out"
    first = run_cli("batch", str(demo_inputs["crop"]), str(demo_inputs["broken"]), "-o",
                    str(out), "--levels", "fractured", "--workers", "1", "--sr", timeout=600)
    assert first.returncode == 1  # one study failed: said, and the batch went on
    assert "1 failed" in first.stdout and "cannot be read as NIfTI" in first.stdout
    table = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == list(table.columns) and len(csv) == len(table)
    assert csv.level.fillna("").tolist() == table.level.fillna("").tolist()
    assert np.allclose(csv.min_canal_clearance_mm, table.min_canal_clearance_mm.astype(float),
                       equal_nan=True)
    failed = table[table.status == "failed"]
    assert len(failed) == 1 and "broken.nii" in failed.input.iloc[0]
    demo = table[table.input == str(demo_inputs["crop"].resolve())].set_index("level")
    assert list(demo.index) == ["T12", "L1", "L2"]
    assert not demo.names_uncertain.any()
    assert demo.loc["L1", "genant_grade"] >= 2 and bool(demo.loc["L1", "fractured"])
    assert demo.loc["L1", "needles_planned"] == 2  # the fractured level, both sides
    assert demo.loc["L1", "min_canal_clearance_mm"] > 1.0
    assert demo.loc["L1", "status"] in ("safe", "caution")
    assert (demo.drop(index="L1").needles_planned == 0).all()  # only the fractured one
    assert demo.loc["L2", "pedicle_width_left_mm"] > 5 and demo.loc["L2", "body_volume_ml"] > 10
    key = demo.study_key.iloc[0]
    assert (out / "studies" / key / "plan.vplan.json").exists()
    sr = pydicom.dcmread(out / "studies" / key / "plan_sr.dcm")
    assert sr.StudyInstanceUID == demo.study_uid.iloc[0]  # in the CT's study
    # the rerun plans nothing that is done, and tries the failed study again
    again = run_cli("batch", str(demo_inputs["crop"]), str(demo_inputs["broken"]), "-o",
                    str(out), "--workers", "1", timeout=600)
    assert "2 studies: 1 already done, 1 to plan." in again.stdout
    assert pd.read_parquet(out / "results.parquet").shape == table.shape


@contextlib.contextmanager
def _dask_cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and one ``dask worker``, each its own process, on loopback."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent))
    assert dask is not None, "the dask command comes with dask[distributed]"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [(tmp_path / "scheduler.log").open("wb"), (tmp_path / "worker.log").open("wb")]
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                                  str(port), "--dashboard-address", "127.0.0.1:0"],
                                 stdout=logs[0], stderr=subprocess.STDOUT)
    worker = subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                               "--host", "127.0.0.1", "--no-dashboard",
                               "--local-directory", str(tmp_path / "worker-space")],
                              stdout=logs[1], stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"Starting established connection" not in (tmp_path / "worker.log").read_bytes():
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            assert worker.poll() is None and scheduler.poll() is None
            time.sleep(0.2)
        yield address
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def test_a_real_scheduler_and_worker_plan_the_crop(demo_inputs, tmp_path) -> None:
    with _dask_cluster(tmp_path) as address:
        result = run_cli("batch", str(demo_inputs["crop"]), "-o", str(tmp_path / "out"),
                         "--scheduler", address, "--levels", "all", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Dask: 1 worker\(s\)", result.stdout)
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    planned = table[table.needles_planned > 0]
    assert len(planned) >= 2  # needles on the crop's vertebrae
    assert (planned.min_canal_clearance_mm > 1.0).all()
    assert set(table.status) <= {"safe", "caution", "not planned"}


def test_bad_arguments_are_one_line(tmp_path) -> None:
    missing = run_cli("batch", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o"))
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    bad_level = run_cli("batch", str(tmp_path), "-o", str(tmp_path / "o"), "--levels", "X9")
    assert bad_level.returncode == 1 and "Traceback" not in bad_level.stderr
    nothing = run_cli("batch", "-o", str(tmp_path / "o"))
    assert nothing.returncode == 1 and "no input" in nothing.stderr


def test_studies_found_on_a_pacs_are_retrieved_and_planned(demo_inputs, filled_pacs,
                                                            tmp_path) -> None:
    """``--pacs NODE --query``: the crop, sent to Orthanc under its own patient, is found,
    retrieved by the worker into the shared cache, planned and reported (PDF)."""
    from planning.interop.send import send

    files = sorted(demo_inputs["crop"].glob("*.dcm"))
    staged = tmp_path / "staged"
    staged.mkdir()
    for path in files:  # the crop under a patient of its own on the test PACS
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.PatientName = "BATCH1", "BATCH^CROP"
        ds.StudyDate = "19990101"  # outside every date the shared PACS's searches ask for
        ds.save_as(staged / path.name)
    assert send(filled_pacs.pacs.dimse, sorted(staged.glob("*.dcm"))).ok
    result = run_cli("batch", "-o", str(tmp_path / "out"), "--pacs",
                     str(filled_pacs.pacs.web), "--query", "patient_id=BATCH1",
                     "--levels", "fractured", "--workers", "1", "--pdf",
                     "--ae-title", filled_pacs.pacs.local.ae_title, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("level")
    assert table.input.unique().tolist() == [str(filled_pacs.pacs.web)]
    assert table.loc["L1", "needles_planned"] == 2
    report = tmp_path / "out" / "studies" / table.study_key.iloc[0] / "report.pdf"
    assert report.read_bytes().startswith(b"%PDF")
    cached = list((tmp_path / "out" / "cache").rglob("*.dcm"))
    assert len(cached) == len(files)
    bad = run_cli("batch", "-o", str(tmp_path / "out2"), "--pacs", str(filled_pacs.pacs.web))
    assert bad.returncode == 1 and "--query with at least one search key" in bad.stderr
