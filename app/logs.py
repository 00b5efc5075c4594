"""The session log: a rotating file in the user's log folder, with no patient identifiers.

Why a file: a department's IT needs the log of a session that went wrong, after the fact
and without a terminal. Why redaction on top of careful messages: file and folder names
(in paths, in exception texts and tracebacks) often carry the patient's name or ID, so the
open patient's name, ID and birth date are replaced by ``[patient]`` in every record
before it is written, whatever logged it.

Folder: ``$VERTEBROPLAN_LOG_DIR``, else ``$XDG_STATE_HOME/vertebroplan/log``
(``~/.local/state/vertebroplan/log``). ``vertebroplan.log`` rotates at 1 MB, 5 old files.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import threading
from pathlib import Path

from planning.volume import PatientInfo

LOG_ENV = "VERTEBROPLAN_LOG_DIR"
LOG_NAME = "vertebroplan.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
MIN_TOKEN = 3  # shorter name parts ("Li", "Jo") would blank out ordinary words
REDACTED = "[patient]"
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"


def log_folder() -> Path:
    if os.environ.get(LOG_ENV):
        return Path(os.environ[LOG_ENV])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vertebroplan" / "log"


def identifier_tokens(patient: PatientInfo) -> list[str]:
    """What must not appear in a log for this patient: the whole name (DICOM ``^`` form and
    with spaces), each name part, the ID, the birth date as stored and as ISO date."""
    tokens: set[str] = set()
    name = patient.name.strip()
    if name:
        tokens.add(name)
        parts = [p for p in re.split(r"[\^\s,]+", name) if p]
        tokens.update(parts)
        tokens.add(" ".join(parts))
    if patient.patient_id.strip():
        tokens.add(patient.patient_id.strip())
    b = patient.birth_date.strip()
    if b:
        tokens.add(b)
        if len(b) == 8 and b.isdigit():
            tokens.add(f"{b[:4]}-{b[4:6]}-{b[6:]}")
            tokens.add(f"{b[6:]}.{b[4:6]}.{b[:4]}")
    return sorted((t for t in tokens if len(t) >= MIN_TOKEN), key=len, reverse=True)


class IdentifierRedactor(logging.Filter):
    """Replaces the open patient's identifiers in each record (message and traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._formatter = logging.Formatter(FORMAT)

    def set_patient(self, patient: PatientInfo | None) -> None:
        """Identifiers to redact from now on (added to, never forgotten in a session: a
        later record may still name an earlier patient's file)."""
        tokens = [] if patient is None else identifier_tokens(patient)
        with self._lock:
            self._tokens |= set(tokens)
            alternatives = sorted(self._tokens, key=len, reverse=True)  # longest first
            self._pattern = (re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)
                             if alternatives else None)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTOR = IdentifierRedactor()
_installed: dict[str, logging.Handler] = {}


def setup_logging(level: int = logging.INFO, *, to_stderr: bool = True) -> Path | None:
    """Log to the rotating file (and stderr), redacted: every logger (ours and the
    libraries'), the chatty DICOM network library only from warnings up.

    Returns the log file, or None when its folder cannot be written (the session goes on
    without a file: a read-only home is no reason to refuse to start).
    """
    root = logging.getLogger()
    root.setLevel(level)
    for chatty in ("pynetdicom", "highdicom"):  # every association, every copied module
        logging.getLogger(chatty).setLevel(logging.WARNING)
    path: Path | None = log_folder() / LOG_NAME
    if "file" not in _installed:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        except OSError:
            path = None
        else:
            _add(root, "file", handler)
    else:
        path = Path(getattr(_installed["file"], "baseFilename", path))
    if to_stderr and "stderr" not in _installed:
        _add(root, "stderr", logging.StreamHandler())
    return path


def _add(root: logging.Logger, name: str, handler: logging.Handler) -> None:
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(REDACTOR)
    root.addHandler(handler)
    _installed[name] = handler
