"""Running the `vertebroplan` command line: in this process through `app.cli.main(argv)`,
or, for the real entry point and the window, as a user would, in a subprocess.

Why in-process: a fresh interpreter per command spent about 3 s importing numpy, scipy,
pydicom and the app before any work, 54 times a suite. ``main`` is what the console script
runs, so the arguments, exit status, stdout and stderr a test sees are the same; a few
tests keep the subprocess (`run_cli_process`) to prove the installed entry point itself.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IN_A_PROCESS = {"open"}  # the window: its own QApplication, its own process


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``vertebroplan ARGS`` run by `app.cli.main` in this process (the window's ``open``
    in a subprocess), output captured as text, as a `CompletedProcess`."""
    if args and args[0] in IN_A_PROCESS:
        return run_cli_process(*args, timeout=timeout)
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
    return subprocess.CompletedProcess(["vertebroplan", *args], code, out.getvalue(),
                                       err.getvalue())


def run_cli_process(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m app.cli ARGS`` from the project root, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def demo_series(ct: Path) -> Path:
    """The demo CT's DICOM series and ground truth, as ``vertebroplan demo-ct ct`` writes
    them, copied from the machine's demo cache (written once; `tests/app/test_cli.py`
    runs the command itself): generating and encoding it again took 6 s a module."""
    from planning.demo import demo_ct_path

    shutil.copytree(demo_ct_path(), ct, ignore=shutil.ignore_patterns(".*"))
    return ct


def demo_case(root: Path) -> tuple[Path, Path]:
    """The demo CT written as DICOM into ``root``/ct and a plan of L1 and L2 proposed on
    it by the command line (``root``/plan.vplan.json): what the export tests export."""
    ct, plan = root / "ct", root / "plan.vplan.json"
    demo_series(ct)
    made = run_cli("plan", str(ct), "--levels", "L1,L2", "--anatomy", "truth", "-o", str(plan))
    assert made.returncode == 0, made.stderr
    return ct, plan
