"""The PyInstaller bundle (`make package`): built, started on the demo CT under Xvfb, and its
command line run frozen — DICOM reading (uncompressed and compressed), planning, the PDF
report and the DICOM SR.

Slow (a build takes minutes on two cores): it runs only with VERTEBROPLAN_PACKAGE_TEST=1,
which `make test-package` sets; `make test` skips it. An existing bundle is reused when it
is newer than every source file (VERTEBROPLAN_PACKAGE_REBUILD=1 forces a build). The bundle's
size and start times are printed (run with -s) and written to
tests/artifacts/bundle_metrics.json, with the screenshots beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from configparser import ConfigParser
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "dist" / "vertebroplan"
EXE = BUNDLE / "vertebroplan"
ARTIFACTS = ROOT / "tests" / "artifacts"
BUILD_TIMEOUT_S = 1800
GUI_TIMEOUT_S = 300
CLI_TIMEOUT_S = 300
SCREEN = "1600x1000x24"
# what a build depends on: a newer one of these makes the bundle stale
SOURCES = ("app", "widgets", "planning", "resources", "packaging", "pyproject.toml")
SOURCE_SUFFIXES = {".py", ".qss", ".json", ".spec", ".sh", ".desktop", ".svg", ".png", ".toml"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("VERTEBROPLAN_PACKAGE_TEST") != "1",
        reason="builds and runs the PyInstaller bundle: `make test-package` "
        "(VERTEBROPLAN_PACKAGE_TEST=1)",
    ),
]

METRICS: dict[str, object] = {}


def _project_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else path.rglob("*")
        for f in files:
            if f.suffix in SOURCE_SUFFIXES and "__pycache__" not in f.parts and f.is_file():
                newest = max(newest, f.stat().st_mtime)
    return newest


def _bundle_is_fresh() -> bool:
    stamp = BUNDLE / "VERSION"  # written last by packaging/build.sh
    return EXE.is_file() and stamp.is_file() and stamp.stat().st_mtime > _newest_source_mtime()


@pytest.fixture(scope="module")
def bundle() -> Path:
    """dist/vertebroplan, built by packaging/build.sh unless a fresh one is there."""
    if os.environ.get("VERTEBROPLAN_PACKAGE_REBUILD") == "1" or not _bundle_is_fresh():
        t0 = time.perf_counter()
        build = subprocess.run(
            ["bash", str(ROOT / "packaging" / "build.sh")],
            cwd=ROOT, env={**os.environ, "PY": sys.executable},
            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False,
        )
        assert build.returncode == 0, (
            f"build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}")
        METRICS["build_s"] = round(time.perf_counter() - t0, 1)
    assert EXE.is_file() and os.access(EXE, os.X_OK)
    return BUNDLE


@pytest.fixture(scope="module")
def user_env(tmp_path_factory) -> dict[str, str]:
    """A fresh user (home, XDG folders, settings, recovery) and nothing of the venv: the
    bundle must run on its own."""
    base = tmp_path_factory.mktemp("bundle-user")
    home = base / "home"
    home.mkdir()
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "QT_QPA_PLATFORM",
                        "QT_API", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY"}
           and not k.startswith("VERTEBROPLAN_")}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(base / "cache"),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_DATA_HOME=str(base / "data"),
        XDG_STATE_HOME=str(base / "state"),
        VERTEBROPLAN_SETTINGS=str(base / "settings.ini"),
        VERTEBROPLAN_RECOVERY_DIR=str(base / "recovery"),
        PATH=os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                             if p and p != venv_bin),
    )
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bundle-work")


def run_bundle(env: dict[str, str], cwd: Path, *args: str,
               display: bool = False) -> subprocess.CompletedProcess[str]:
    """The frozen executable with ``args`` (under xvfb-run when it needs a display)."""
    cmd = [str(EXE), *args]
    if display:
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", *cmd]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} → exit {result.returncode}\n"
        f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def demo_ct(bundle, user_env, workdir) -> Path:
    """The demo spine CT, written by the frozen `vertebroplan demo-ct`."""
    out = workdir / "demo-ct"
    _ok(run_bundle(user_env, workdir, "demo-ct", str(out)))
    return out


@dataclass(frozen=True)
class Start:
    seconds_to_screenshot: float
    returncode: int
    stdout: str
    stderr: str


def start_gui(env: dict[str, str], cwd: Path, png: Path) -> Start:
    """`vertebroplan --screenshot PNG` on a fresh virtual screen; the time is from the
    process start (xvfb-run included, well under a second) to "Screenshot saved"."""
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", str(EXE), "--screenshot", str(png)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    saved_at: list[float] = []
    lines: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Screenshot saved") and not saved_at:
                saved_at.append(time.perf_counter() - t0)

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=GUI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session this test started (xvfb-run, Xvfb, app)
        proc.wait()
        pytest.fail(f"the bundle did not save a screenshot within {GUI_TIMEOUT_S} s:\n"
                    f"{''.join(lines)[-3000:]}")
    reader.join(timeout=10)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    return Start(saved_at[0] if saved_at else float("nan"), proc.returncode,
                 "".join(lines), stderr)


def spine_in_3d_view(png: Path) -> tuple[float, float]:
    """Fractions of bone-coloured and of background pixels in the 3D view's cell.

    The 3D view is the bottom-left cell of the window (left ~quarter, lower half). Bone is
    warm ivory (red well above blue); the 3D background is a blue-grey gradient; the slice
    views beside it are grey (red = blue), so neither can pass for the other.
    """
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    h, w, _ = rgb.shape
    cell = rgb[int(0.45 * h):int(0.95 * h), : int(0.30 * w)]
    red, blue = cell[..., 0], cell[..., 2]
    bone = (red > 90) & (red - blue > 20)
    background = blue - red > 8
    return float(bone.mean()), float(background.mean())


def test_bundle_has_version_desktop_entry_icon_and_fonts(bundle, user_env, workdir):
    version = _project_version()
    assert (bundle / "VERSION").read_text().strip() == version
    result = _ok(run_bundle(user_env, workdir, "--version"))
    assert result.stdout.strip() == f"vertebroplan {version}"

    entry = ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive in desktop entries
    entry.read(bundle / "vertebroplan.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Exec"].split()[0] == "vertebroplan"
    assert section["Icon"] == "vertebroplan" and section["Terminal"] == "false"
    if shutil.which("desktop-file-validate"):  # desktop-file-utils, when installed
        _ok(subprocess.run(["desktop-file-validate", str(bundle / "vertebroplan.desktop")],
                           capture_output=True, text=True, timeout=60, check=False))
    with Image.open(bundle / "vertebroplan.png") as icon:
        assert icon.size == (256, 256)
    assert (bundle / "vertebroplan.svg").read_text().lstrip().startswith("<?xml")
    for font in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        assert (bundle / "_internal" / "fonts" / font).is_file(), font
    # the system's own libstdc++ (Mesa's drivers need it as new as they are) and fontconfig
    for system_lib in ("libstdc++.so.6", "libfontconfig.so.1"):
        assert not list(bundle.rglob(system_lib)), system_lib

    # the launcher for this user points at the bundle's executable
    _ok(subprocess.run(["sh", str(bundle / "install-desktop.sh")], env=user_env, cwd=workdir,
                       capture_output=True, text=True, timeout=60, check=False))
    data = Path(user_env["XDG_DATA_HOME"])
    installed = (data / "applications" / "vertebroplan.desktop").read_text()
    assert f'Exec="{EXE}"' in installed
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "vertebroplan.png").is_file()
    assert (Path(user_env["HOME"]) / ".local" / "bin" / "vertebroplan").resolve() == EXE

    du = subprocess.run(["du", "-sm", str(bundle)], capture_output=True, text=True, check=True)
    METRICS["size_mb"] = int(du.stdout.split()[0])  # on disk, MiB, as `du -sm` says
    METRICS["files"] = sum(1 for f in bundle.rglob("*") if f.is_file())
    print(f"\nbundle: {bundle} — {METRICS['size_mb']} MB on disk in {METRICS['files']} files")


def test_bundle_starts_on_the_demo_ct_and_shows_the_spine(bundle, user_env, workdir):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    starts = {}
    # first start: the demo CT is generated into the fresh cache; then the usual start
    for run in ("first", "cached"):
        png = workdir / f"bundle_{run}.png"
        start = start_gui(user_env, workdir, png)
        assert start.returncode == 0, f"exit {start.returncode}:\n{start.stdout}\n{start.stderr}"
        assert "first 3D render" in start.stdout and png.is_file()
        bone, background = spine_in_3d_view(png)
        shutil.copyfile(png, ARTIFACTS / f"bundle_{run}_start.png")
        assert background > 0.2, f"the 3D view is not there ({background:.1%} background)"
        assert bone > 0.03, f"only {bone:.1%} of the 3D view shows bone"
        starts[run] = start.seconds_to_screenshot
    cache = Path(user_env["XDG_CACHE_HOME"]) / "vertebroplan"
    assert len(list(cache.glob("demo-ct-*"))) == 1  # the second start reused the first's CT
    METRICS["start_first_s"] = round(starts["first"], 1)
    METRICS["start_cached_s"] = round(starts["cached"], 1)
    print(f"\nstart → screenshot saved: {starts['first']:.1f} s on the first start (demo CT "
          f"generated), {starts['cached']:.1f} s with the demo CT cached")


def test_bundle_reads_the_demo_ct_and_its_compressed_copies(bundle, user_env, workdir,
                                                             demo_ct):
    info = json.loads(_ok(run_bundle(user_env, workdir, "info", str(demo_ct), "--json")).stdout)
    assert info["modality"] == "CT" and info["warnings"] == []
    assert info["size"][2] > 200 and info["hu_max"] > 1000

    cases = json.loads(_ok(run_bundle(user_env, workdir, "cases", "--json")).stdout)
    assert len(json.dumps(cases)) > 100 and "L3" in json.dumps(cases)  # resources/training

    # a few slices, written in each lossless transfer syntax a PACS may send; the frozen
    # reader must decode them (pylibjpeg plugins found through their entry points) to the
    # very same HU as the uncompressed slices
    slices = sorted(demo_ct.glob("*.dcm"))[140:146]
    plain = workdir / "slices-plain"
    plain.mkdir()
    for f in slices:
        shutil.copyfile(f, plain / f.name)
    reference = json.loads(_ok(run_bundle(user_env, workdir, "info", str(plain), "--json")).stdout)
    encodings: dict[str, object] = {"rle": RLELossless, "jpeg2000": JPEG2000Lossless,
                                    "jpeg-ls": JPEGLSLossless}
    if shutil.which("dcmcjpeg"):
        encodings["jpeg-lossless"] = ("dcmcjpeg", "+e1")  # dcmtk, as a scanner would
    for name, how in encodings.items():
        folder = workdir / f"slices-{name}"
        folder.mkdir()
        for f in slices:
            if isinstance(how, tuple):
                _ok(subprocess.run([*how, str(f), str(folder / f.name)], capture_output=True,
                                   text=True, timeout=60, check=False))
            else:
                ds = pydicom.dcmread(f)
                ds.compress(how)
                ds.save_as(folder / f.name, enforce_file_format=True)
        assert pydicom.dcmread(next(folder.glob("*.dcm"))).file_meta.TransferSyntaxUID.is_compressed
        decoded = json.loads(
            _ok(run_bundle(user_env, workdir, "info", str(folder), "--json")).stdout)
        for key in ("size", "hu_min", "hu_max", "affine_lps", "series_uid"):
            assert decoded[key] == reference[key], (name, key)


def test_bundle_plans_and_exports_pdf_and_sr(bundle, user_env, workdir, demo_ct):
    plan = workdir / "plan.vplan.json"
    _ok(run_bundle(user_env, workdir, "plan", str(demo_ct), "-o", str(plan),
                   "--levels", "L2", "--anatomy", "truth"))
    levels = {t["level"] for t in json.loads(plan.read_text())["trajectories"]}
    assert levels == {"L2"}

    pdf, sr = workdir / "report.pdf", workdir / "plan-sr.dcm"
    t0 = time.perf_counter()
    _ok(run_bundle(user_env, workdir, "export", str(demo_ct), str(plan), "--pdf", str(pdf),
                   "--sr", str(sr), "--no-3d"))
    METRICS["export_pdf_sr_s"] = round(time.perf_counter() - t0, 1)
    body = pdf.read_bytes()
    assert body.startswith(b"%PDF-") and b"DejaVuSans" in body  # fpdf2 embedded the font
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "L2" in text and "not for clinical use" in text
    ds = pydicom.dcmread(sr)
    assert ds.Modality == "SR"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    ct_slice = pydicom.dcmread(next(demo_ct.glob("*.dcm")), stop_before_pixels=True)
    assert ds.StudyInstanceUID == ct_slice.StudyInstanceUID  # the SR joins the CT's study
    # its 3D coordinates name the CT's Frame of Reference (in the content tree)
    assert any(e.VR == "UI" and e.value == ct_slice.FrameOfReferenceUID for e in ds.iterall())


def test_bundle_report_with_3d_snapshots_renders_off_screen(bundle, user_env, workdir,
                                                            demo_ct):
    plan = workdir / "plan-3d.vplan.json"
    _ok(run_bundle(user_env, workdir, "plan", str(demo_ct), "-o", str(plan),
                   "--levels", "L1", "--anatomy", "truth"))
    images = {}
    for name, extra in (("without-3d", ["--no-3d"]), ("with-3d", [])):
        pdf = workdir / f"report-{name}.pdf"
        _ok(run_bundle(user_env, workdir, "export", str(demo_ct), str(plan), "--pdf", str(pdf),
                       "--no-fluoro", *extra, display=True))
        images[name] = pdf.read_bytes().count(b"/Subtype /Image")
    # the 3D snapshot (VTK off screen, in the bundle) is one more image for the one level
    assert images["with-3d"] == images["without-3d"] + 1, images


def teardown_module() -> None:
    if METRICS:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "bundle_metrics.json").write_text(json.dumps(METRICS, indent=2) + "\n")
        print(f"\nbundle metrics: {json.dumps(METRICS)}")
