"""Fixtures of the report tests."""

from __future__ import annotations

import pytest

from tests.planning.report.demo_report import DemoPlan, demo_plan


@pytest.fixture(scope="session")
def demo_report_plan(shared_demo_ct) -> DemoPlan:
    """`demo_report.demo_plan` made once (about 2 s): read only."""
    return demo_plan(*shared_demo_ct)
