"""The command line as a user runs it: a real subprocess, real files, JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ROOT, run_cli, run_cli_process

from planning.io.dicom_write import write_series
from planning.volume import Volume

ABDOMEN = ROOT.parent / "shared" / "data" / "ct-abdomen-3mm" / "ct.nii.gz"


def _oblique_volume(n_slices: int = 6) -> Volume:
    th = np.radians(30)
    rot = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag([0.75, 0.75, 2.0])
    a[:3, 3] = [-20.0, 35.5, -110.0]
    arr = np.full((n_slices, 10, 12), -1000, np.int16)
    arr[2, 3, 4] = 1500
    return Volume(arr, a)


def test_info_json_on_dicom_folder(tmp_path: Path) -> None:
    vol = _oblique_volume()
    write_series(vol, tmp_path / "ct")
    res = run_cli_process("info", str(tmp_path / "ct"), "--json")  # the real entry point
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["modality"] == "CT"
    assert info["size"] == [12, 10, 6]
    np.testing.assert_allclose(info["spacing_mm"], [0.75, 0.75, 2.0], atol=1e-6)
    np.testing.assert_allclose(info["affine_lps"], vol.affine_lps, atol=1e-5)
    assert (info["hu_min"], info["hu_max"]) == (-1000, 1500)
    for key in ("study_uid", "series_uid", "frame_of_reference_uid"):
        assert info[key].startswith("1.2.")
    assert info["warnings"] == []
    # the marked voxel, taken through the printed affine, is where it was written
    lps = np.array(info["affine_lps"]) @ [4, 3, 2, 1]
    np.testing.assert_allclose(lps[:3], vol.to_lps([4, 3, 2]), atol=1e-4)


def test_info_picks_the_largest_ct_series_and_says_so(tmp_path: Path) -> None:
    write_series(_oblique_volume(6), tmp_path / "mixed" / "a", series_description="small")
    write_series(_oblique_volume(9), tmp_path / "mixed" / "b", series_description="large")
    res = run_cli("info", str(tmp_path / "mixed"), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["size"][2] == 9
    assert any("largest" in w and "2 series" in w for w in info["warnings"])


@pytest.mark.skipif(not ABDOMEN.exists(), reason="shared data absent")
def test_info_json_on_nifti() -> None:
    res = run_cli("info", str(ABDOMEN), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["size"] == [122, 101, 112]
    a = np.array(info["affine_lps"])
    # RAS diag(3, 3, 3) becomes LPS diag(−3, −3, 3)
    np.testing.assert_allclose(np.diag(a)[:3], [-3.0, -3.0, 3.0])


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "No DICOM images found"),
        (
            lambda p: p / "x.txt" if (p / "x.txt").write_text("hello") else None,
            "neither a DICOM folder",
        ),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path: Path, make, fragment: str) -> None:
    path = make(tmp_path)
    # in a real process: nothing else (a logger, a warning) may add to the one line
    res = run_cli_process("info", str(path), "--json")
    assert res.returncode != 0
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert fragment in lines[0] and str(path) in lines[0]
    assert "Traceback" not in res.stderr


def test_demo_ct_command_writes_a_loadable_series_with_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = run_cli("demo-ct", str(out))
    assert res.returncode == 0, res.stderr
    assert "T10" in res.stdout and "L5" in res.stdout and "not for clinical use" in res.stdout
    assert (out / "ground_truth.json").exists()
    info = json.loads(run_cli("info", str(out), "--json").stdout)
    assert info["modality"] == "CT" and info["warnings"] == []
    from planning.demo import demo_uids, load_demo_truth

    assert info["frame_of_reference_uid"] == demo_uids()["frame_of_reference_uid"]
    truth = load_demo_truth(out)
    np.testing.assert_allclose(info["affine_lps"], truth.affine_lps, atol=1e-5)
    assert info["size"] == list(truth.labels.shape[::-1])


def test_gui_without_a_display_says_so_in_one_line(tmp_path: Path) -> None:
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    res = subprocess.run(
        [sys.executable, "-m", "app.cli", "open", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "no display" in res.stderr
    assert "xvfb-run" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.gui
def test_screenshot_mode_ends_with_an_error_instead_of_waiting(tmp_path: Path) -> None:
    """A smoke run on a bad path must not hang behind an error dialog nobody can close."""
    res = run_cli(
        "open", str(tmp_path / "missing"), "--screenshot", str(tmp_path / "x.png"), timeout=120
    )
    assert res.returncode == 1
    assert "does not exist" in res.stderr
    assert not (tmp_path / "x.png").exists()
