"""The case list: every CT opened or retrieved, where it is, and its plans with their state.

An embedded SQLite database in the user's data folder (no server). Why SQLite and not a JSON
file: several windows and batch runs may write at once, and a crash in the middle of a write
must leave the previous state, which SQLite's transactions (in WAL mode) give. It holds
names, UIDs, paths and states only, never pixel data. The schema carries its version
(``PRAGMA user_version``) and is migrated step by step when an older database is opened.

Plan states only move forward for one version of a plan: draft → checked → exported → sent;
saving a changed plan starts again at draft (or checked), since its exports are outdated.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from planning.errors import VertebroPlanError

DATA_ENV = "VERTEBROPLAN_DATA"
STATES = ("draft", "checked", "exported", "sent")
SOURCES = ("folder", "nifti", "pacs", "demo")
SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, str] = {
    1: """
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            study_uid TEXT NOT NULL DEFAULT '',
            series_uid TEXT NOT NULL DEFAULT '',
            patient_id TEXT NOT NULL DEFAULT '',
            patient_name TEXT NOT NULL DEFAULT '',
            study_date TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            ct_path TEXT NOT NULL,
            opened_at REAL NOT NULL,
            changed_at REAL NOT NULL,
            UNIQUE (ct_path, series_uid)
        );
        CREATE TABLE plans (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
            path TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            changed_at REAL NOT NULL
        );
        CREATE INDEX plans_by_case ON plans(case_id);
    """,
    # 2: where a retrieved CT came from, the accession, and the plan's needle count
    2: """
        ALTER TABLE cases ADD COLUMN source_node TEXT NOT NULL DEFAULT '';
        ALTER TABLE cases ADD COLUMN accession TEXT NOT NULL DEFAULT '';
        ALTER TABLE plans ADD COLUMN needles INTEGER NOT NULL DEFAULT 0;
    """,
}


class CaseListError(VertebroPlanError, OSError):
    """The case database cannot be opened or written; the message names the file."""


def default_case_list_path() -> Path:
    """``$VERTEBROPLAN_DATA/cases.sqlite``, else ``$XDG_DATA_HOME/vertebroplan/…``."""
    base = os.environ.get(DATA_ENV)
    if base:
        return Path(base) / "cases.sqlite"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data) / "vertebroplan" / "cases.sqlite"


@dataclass(frozen=True)
class CaseRecord:
    """What is known of a CT when it is opened (filled from the volume's header)."""

    ct_path: str
    source: str
    study_uid: str = ""
    series_uid: str = ""
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    description: str = ""
    accession: str = ""
    source_node: str = ""


@dataclass(frozen=True)
class CaseRow:
    """One line of File ▸ Cases…: the case and its latest plan (if any)."""

    case_id: int
    record: CaseRecord
    opened_at: float
    changed_at: float
    plan_path: str = ""
    plan_state: str = ""
    needles: int = 0
    plans: int = 0

    @property
    def ct_exists(self) -> bool:
        return Path(self.record.ct_path).exists()


SORT_KEYS = {"changed": "changed_at", "opened": "c.opened_at", "patient": "c.patient_name",
             "study_date": "c.study_date", "state": "plan_rank"}


class CaseList:
    """The case database. Each method is one transaction; safe to use from one thread at a
    time per instance (open one instance per thread)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_case_list_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise CaseListError(f"The case list {self.path} cannot be opened: {exc}. Move "
                                "it aside to start a new one.") from exc
        except OSError as exc:
            raise CaseListError(f"The case list {self.path} cannot be created: "
                                f"{exc.strerror or exc}.") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CaseList:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise CaseListError(f"The case list {self.path} was written by a newer VertebroPlan "
                                f"(schema {version}, this one reads up to {SCHEMA_VERSION}).")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            with self._db:  # each step whole or not at all
                self._db.executescript("BEGIN;" + _MIGRATIONS[step]
                                       + f"PRAGMA user_version={step};COMMIT;")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.DatabaseError as exc:
            raise CaseListError(f"The case list {self.path} could not be written: {exc}.") \
                from exc

    # ---- writing ----------------------------------------------------------------------
    def record_open(self, record: CaseRecord, *, now: float | None = None) -> int:
        """A CT was opened (or retrieved): add its case or update it; returns its id."""
        if record.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {record.source!r}")
        stamp = time.time() if now is None else now
        ct_path = str(Path(record.ct_path).resolve()) if record.source != "demo" \
            else record.ct_path
        with self._write() as db:
            db.execute(
                """INSERT INTO cases (study_uid, series_uid, patient_id, patient_name,
                       study_date, description, source, ct_path, opened_at, changed_at,
                       source_node, accession)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT (ct_path, series_uid) DO UPDATE SET
                       opened_at=excluded.opened_at, changed_at=excluded.changed_at,
                       study_uid=excluded.study_uid, patient_id=excluded.patient_id,
                       patient_name=excluded.patient_name, study_date=excluded.study_date,
                       description=excluded.description, source=excluded.source,
                       source_node=CASE WHEN excluded.source_node != ''
                                        THEN excluded.source_node ELSE source_node END,
                       accession=excluded.accession""",
                (record.study_uid, record.series_uid, record.patient_id, record.patient_name,
                 record.study_date, record.description, record.source, ct_path, stamp, stamp,
                 record.source_node, record.accession))
            row = db.execute("SELECT id FROM cases WHERE ct_path=? AND series_uid=?",
                             (ct_path, record.series_uid)).fetchone()
        return int(row[0])

    def record_plan(self, case_id: int, plan_path: str | os.PathLike[str], state: str, *,
                    needles: int = 0, saved: bool = False, now: float | None = None) -> None:
        """A plan of the case reached ``state``.

        ``saved=True`` means a new version of the plan was written: its state is set as
        given (exports of the old version no longer count). Otherwise the state only
        advances (an export of an unchanged plan)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        stamp = time.time() if now is None else now
        path = str(Path(plan_path).resolve())
        with self._write() as db:
            old = db.execute("SELECT state FROM plans WHERE path=?", (path,)).fetchone()
            if old is not None and not saved and STATES.index(old[0]) >= STATES.index(state):
                state = old[0]
            db.execute(
                """INSERT INTO plans (case_id, path, state, changed_at, needles)
                   VALUES (?,?,?,?,?)
                   ON CONFLICT (path) DO UPDATE SET case_id=excluded.case_id,
                       state=excluded.state, changed_at=excluded.changed_at,
                       needles=CASE WHEN excluded.needles > 0 OR ? THEN excluded.needles
                                    ELSE needles END""",
                (case_id, path, state, stamp, needles, saved))
            db.execute("UPDATE cases SET changed_at=? WHERE id=?", (stamp, case_id))

    def remove(self, case_id: int) -> None:
        """Forget a case and its plans (the files stay where they are)."""
        with self._write() as db:
            db.execute("DELETE FROM cases WHERE id=?", (case_id,))

    # ---- reading ----------------------------------------------------------------------
    def cases(self, text: str = "", *, state: str = "", sort: str = "changed",
              descending: bool = True) -> list[CaseRow]:
        """The cases, filtered by ``text`` (patient, ID, description, accession, path) and
        by their latest plan's ``state``, sorted by one of `SORT_KEYS`."""
        if sort not in SORT_KEYS:
            raise ValueError(f"sort must be one of {tuple(SORT_KEYS)}, got {sort!r}")
        rank = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATES))
        like = f"%{text.strip()}%"
        rows = self._db.execute(
            f"""SELECT c.id, c.ct_path, c.source, c.study_uid, c.series_uid, c.patient_id,
                       c.patient_name, c.study_date, c.description, c.accession,
                       c.source_node, c.opened_at,
                       MAX(c.changed_at, COALESCE(p.changed_at, 0)) AS changed_at,
                       COALESCE(p.path, ''), COALESCE(p.state, ''), COALESCE(p.needles, 0),
                       (SELECT COUNT(*) FROM plans q WHERE q.case_id = c.id),
                       CASE COALESCE(p.state, '') {rank} ELSE -1 END AS plan_rank
                FROM cases c
                LEFT JOIN plans p ON p.id = (SELECT id FROM plans q WHERE q.case_id = c.id
                                             ORDER BY q.changed_at DESC LIMIT 1)
                WHERE (c.patient_name LIKE :t OR c.patient_id LIKE :t
                       OR c.description LIKE :t OR c.accession LIKE :t OR c.ct_path LIKE :t)
                  AND (:s = '' OR COALESCE(p.state, '') = :s)
                ORDER BY {SORT_KEYS[sort]} {'DESC' if descending else 'ASC'}, c.id DESC""",
            {"t": like, "s": state}).fetchall()
        return [CaseRow(r[0], CaseRecord(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                                         r[10]), r[11], r[12], r[13], r[14], r[15], r[16])
                for r in rows]

    def case_for(self, ct_path: str | os.PathLike[str], series_uid: str = "") -> int | None:
        row = self._db.execute("SELECT id FROM cases WHERE ct_path=? AND series_uid=?",
                               (str(Path(ct_path).resolve()), series_uid)).fetchone()
        return None if row is None else int(row[0])
