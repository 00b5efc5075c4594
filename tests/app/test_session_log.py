"""The session log: a rotating file in the log folder, useful (what happened) and free of
the patient's name, ID and birth date, even where a traceback names an identifying path."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.logs import REDACTED, IdentifierRedactor, identifier_tokens
from planning.demo import demo_ct_path
from planning.demo.phantom import DEMO_PATIENT
from planning.volume import PatientInfo

ROOT = Path(__file__).resolve().parents[2]
DEMO_IDENTIFIERS = ("VP-DEMO-0001", "19500101", "1950-01-01", "01.01.1950",
                    "VertebroPlan^Demo", "VertebroPlan Demo")


def test_a_whole_session_logs_what_happened_and_no_identifiers(tmp_path: Path) -> None:
    folder = tmp_path / "VertebroPlan_Demo VP-DEMO-0001 19500101"
    folder.symlink_to(demo_ct_path(), target_is_directory=True)
    logs, out = tmp_path / "logs", tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, VERTEBROPLAN_LOG_DIR=str(logs),
               VERTEBROPLAN_SETTINGS=str(tmp_path / "settings.ini"),
               VERTEBROPLAN_RECOVERY_DIR=str(tmp_path / "recovery"),
               PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(ROOT / "tests" / "app" / "log_session_child.py"), str(folder),
           str(out)]
    if not os.environ.get("DISPLAY"):
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "session done" in run.stdout
    files = sorted(logs.glob("vertebroplan.log*"))
    assert files
    text = "\n".join(f.read_text(encoding="utf-8") for f in files)
    for event in ("CT loaded", "Anatomy ready", "Finished exporting the plan",
                  "opening the plan failed", "Unexpected error while reading the series",
                  "Traceback", REDACTED):
        assert event in text, event
    for identifier in DEMO_IDENTIFIERS:
        assert identifier.lower() not in text.lower(), identifier
    assert (out / "plan-sr.dcm").exists()  # the session did its work


def test_redactor_covers_name_parts_ids_dates_and_tracebacks() -> None:
    patient = PatientInfo(name="Zyxwort^Hermione^Q", patient_id="PID-7731|ZX",
                          birth_date="19420817")
    tokens = identifier_tokens(patient)
    assert "Zyxwort" in tokens and "Hermione" in tokens and "1942-08-17" in tokens
    assert "Q" not in tokens  # too short to redact without blanking ordinary words
    redactor = IdentifierRedactor()
    record = logging.LogRecord("vertebroplan", logging.ERROR, __file__, 1,
                               "failed on %s", ("/data/ZYXWORT_HERMIONE/PID-7731|ZX",), None)
    try:
        raise OSError("/data/Zyxwort Hermione/19420817/x.dcm")
    except OSError:
        record.exc_info = sys.exc_info()
    assert redactor.filter(record)  # nothing to redact yet: passes untouched
    redactor.set_patient(patient)
    redactor.filter(record)
    handler_text = logging.Formatter().format(record)
    for secret in ("Zyxwort", "ZYXWORT", "Hermione", "PID-7731|ZX", "19420817"):
        assert secret not in handler_text, secret
    assert handler_text.count(REDACTED) >= 4


@pytest.mark.parametrize("birth", ["", "1950"])
def test_partial_patient_data_gives_no_empty_pattern(birth: str) -> None:
    redactor = IdentifierRedactor()
    redactor.set_patient(PatientInfo(name="", patient_id="", birth_date=birth))
    assert redactor.redact("nothing to hide") == "nothing to hide"
    redactor.set_patient(DEMO_PATIENT)
    assert "VP-DEMO-0001" not in redactor.redact("ID VP-DEMO-0001")
