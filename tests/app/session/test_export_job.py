"""The export job without a window (`app.export_job.export_plan`): what the GUI's File ▸
Export and Send and the command line both run."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from app.export_job import ExportError, ExportRequest, export_plan
from planning.checks import CheckContext
from planning.interop.send import SendError
from planning.plan import Plan, Side
from planning.progress import Progress
from planning.training import check_attempt
from tests.app.gui_helpers import pedicle_needle


@pytest.fixture(scope="module")
def planned(demo):
    volume, truth, anatomy = demo
    needles = tuple(pedicle_needle(truth, "L1", side) for side in (Side.LEFT, Side.RIGHT))
    plan = Plan(volume.study_uid, volume.series_uid, volume.frame_of_reference_uid, needles)
    results = check_attempt(plan, CheckContext.build(volume, anatomy))
    return volume, anatomy, plan, results


def _export(planned, request: ExportRequest) -> tuple[list[str], object]:
    volume, anatomy, plan, results = planned
    said: list[str] = []
    try:
        outcome: object = export_plan(volume, plan, results, anatomy, request,
                                      Progress(lambda _d, _t, message: said.append(message)))
    except (ExportError, SendError) as exc:
        outcome = exc
    return said, outcome


def test_a_send_to_nobody_fails_before_anything_is_rendered(planned) -> None:
    said, outcome = _export(planned, ExportRequest(send_to="PACS@127.0.0.1:9"))
    assert isinstance(outcome, SendError)
    assert "Connection refused by 127.0.0.1:9" in str(outcome)
    assert said == []  # not a report image, not a DRR: the user hears at once


def test_an_sr_alone_is_written_and_listed(planned, tmp_path: Path) -> None:
    path = tmp_path / "plan.dcm"
    said, report = _export(planned, ExportRequest(sr_path=path, with_assessment=False))
    assert not isinstance(report, Exception), report
    assert report.written == [path]  # type: ignore[attr-defined]
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SR" and ds.StudyInstanceUID == planned[0].study_uid
    assert planned[0].frame_of_reference_uid in str(ds)  # the needles' SCOORD3D frame
    assert any("SR" in message for message in said)
