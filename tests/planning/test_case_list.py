"""The case list database: cases and plan states, filters and sorting, migration from the
first schema, a crash in the middle of a write, and files it cannot use."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from planning.case_list import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    CaseList,
    CaseListError,
    CaseRecord,
    default_case_list_path,
)


def _record(tmp_path, name: str, pid: str, date: str, **kw) -> CaseRecord:
    folder = tmp_path / pid
    folder.mkdir(exist_ok=True)
    return CaseRecord(str(folder), kw.pop("source", "folder"), study_uid=f"1.2.{pid[-1]}",
                      series_uid=f"1.2.{pid[-1]}.1", patient_id=pid, patient_name=name,
                      study_date=date, description=kw.pop("description", "CT spine"), **kw)


def test_a_case_is_one_row_per_ct_and_series_reopened_not_duplicated(tmp_path) -> None:
    with CaseList(tmp_path / "cases.sqlite") as cases:
        first = cases.record_open(_record(tmp_path, "DOE^JOHN", "P1", "20240310"), now=10.0)
        again = cases.record_open(_record(tmp_path, "DOE^JOHN", "P1", "20240310",
                                          source="pacs", source_node="PACS@h:104"), now=20.0)
        assert first == again
        (row,) = cases.cases()
        assert (row.opened_at, row.record.source, row.record.source_node) == \
            (20.0, "pacs", "PACS@h:104")
        assert row.plan_state == "" and row.plans == 0 and row.ct_exists


def test_plan_states_advance_and_a_new_save_starts_again(tmp_path) -> None:
    with CaseList(tmp_path / "cases.sqlite") as cases:
        case = cases.record_open(_record(tmp_path, "DOE^JOHN", "P1", "20240310"))
        plan = tmp_path / "p1.vplan.json"
        cases.record_plan(case, plan, "checked", needles=4, saved=True, now=1.0)
        cases.record_plan(case, plan, "sent", now=2.0)
        cases.record_plan(case, plan, "exported", now=3.0)  # a later PDF: still "sent"
        row = cases.cases()[0]
        assert (row.plan_state, row.needles, row.plan_path) == ("sent", 4, str(plan))
        cases.record_plan(case, plan, "draft", needles=5, saved=True, now=4.0)  # edited
        assert (cases.cases()[0].plan_state, cases.cases()[0].needles) == ("draft", 5)
        with pytest.raises(ValueError, match="state must be one of"):
            cases.record_plan(case, plan, "approved")


def test_filter_and_sort(tmp_path) -> None:
    with CaseList(tmp_path / "cases.sqlite") as cases:
        john = cases.record_open(_record(tmp_path, "DOE^JOHN", "P1", "20240310"), now=1.0)
        jane = cases.record_open(_record(tmp_path, "DOE^JANE", "P2", "20230705",
                                         description="CT abdomen", accession="A77"), now=2.0)
        cases.record_open(_record(tmp_path, "SMITH^ANNA", "P3", "20221120"), now=3.0)
        cases.record_plan(john, tmp_path / "john.vplan.json", "exported", saved=True, now=9.0)
        cases.record_plan(jane, tmp_path / "jane.vplan.json", "draft", saved=True, now=4.0)
        assert [r.record.patient_id for r in cases.cases()] == ["P1", "P2", "P3"]  # changed
        assert [r.record.patient_id for r in cases.cases(sort="opened")] == ["P3", "P2", "P1"]
        assert [r.record.patient_id for r in cases.cases(sort="study_date",
                                                         descending=False)] == \
            ["P3", "P2", "P1"]
        assert [r.record.patient_id for r in cases.cases("doe")] == ["P1", "P2"]
        assert [r.record.patient_id for r in cases.cases("A77")] == ["P2"]
        assert [r.record.patient_id for r in cases.cases(state="draft")] == ["P2"]
        assert [r.record.patient_id for r in cases.cases(sort="state")] == ["P1", "P2", "P3"]
        cases.remove(jane)
        assert [r.record.patient_id for r in cases.cases()] == ["P1", "P3"]
        with pytest.raises(ValueError, match="sort must be one of"):
            cases.cases(sort="size")


def test_a_first_schema_database_is_migrated_with_its_cases(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_MIGRATIONS[1] + "PRAGMA user_version=1;")
    db.execute("INSERT INTO cases (study_uid, patient_name, source, ct_path, opened_at, "
               "changed_at) VALUES ('1.2.3', 'OLD^CASE', 'folder', '/ct/old', 5, 5)")
    db.execute("INSERT INTO plans (case_id, path, state, changed_at) "
               "VALUES (1, '/plans/old.vplan.json', 'checked', 6)")
    db.commit()
    db.close()
    with CaseList(path) as cases:
        assert cases.schema_version == SCHEMA_VERSION == 2
        (row,) = cases.cases()
        assert (row.record.patient_name, row.plan_state, row.needles, row.record.source_node) \
            == ("OLD^CASE", "checked", 0, "")


def test_a_crash_inside_a_write_leaves_the_previous_state(tmp_path) -> None:
    path = tmp_path / "cases.sqlite"
    with CaseList(path) as cases:
        cases.record_open(_record(tmp_path, "DOE^JOHN", "P1", "20240310"))
    child = textwrap.dedent(f"""
        import os
        from planning.case_list import CaseList
        cases = CaseList({str(path)!r})
        with cases._write() as db:
            db.execute("DELETE FROM cases")
            db.execute("INSERT INTO cases (source, ct_path, opened_at, changed_at) "
                       "VALUES ('folder', '/half', 1, 1)")
            os._exit(3)  # the process dies before the transaction commits
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 3, result.stderr
    with CaseList(path) as cases:
        assert [r.record.patient_name for r in cases.cases()] == ["DOE^JOHN"]


def test_files_it_cannot_use_are_named(tmp_path) -> None:
    broken = tmp_path / "cases.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CaseListError, match=f"{broken}.*cannot be opened"):
        CaseList(broken)
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(CaseListError, match="written by a newer VertebroPlan"):
        CaseList(newer)


def test_no_pixel_data_only_words_and_numbers(tmp_path) -> None:
    with CaseList(tmp_path / "cases.sqlite") as cases:
        types = {row[2] for table in ("cases", "plans")
                 for row in cases._db.execute(f"PRAGMA table_info({table})")}
    assert types <= {"INTEGER", "TEXT", "REAL"}


def test_default_path_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VERTEBROPLAN_DATA", str(tmp_path / "d"))
    assert default_case_list_path() == tmp_path / "d" / "cases.sqlite"
