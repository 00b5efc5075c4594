"""The fuzz contract, briefly, in CI: every reader given mutated input returns a valid
result or refuses it with a `VertebroPlanError` naming the file, within a time limit.

Same strategies and oracle as the long run (``python -m fuzz.run``), with a fixed seed
(``derandomize``), a few dozen cases per reader and no example database, so that a
failure here is the same failure on every machine. A failure prints the case's recipe:
``python -m fuzz.run --replay`` needs it saved as ``case.json`` in a folder.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz import seeds
from fuzz.cases import Outcome, Prepared, judge, run_case
from fuzz.strategies import STRATEGIES, TARGETS

# Cases per reader: the file stays under a minute on two cores.
EXAMPLES = {"dicom": 250, "plan": 300, "markups": 300, "sr": 200, "seg": 200}
TIME_LIMIT_S = 10.0  # a case over this is a hang (the alarm stops it with a traceback)
HEADROOM_MB = 2048  # address space a case may add: an absurd allocation fails, not the machine
SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)


@pytest.fixture(scope="module", autouse=True)
def built_seeds() -> None:
    """Build the seed files once, outside any case's time limit."""
    seeds.ct_series_files(), seeds.enhanced_ct_file(), seeds.seed_ct()
    seeds.sr_file(), seeds.seg_file()


def _explain(outcome: Outcome, case: dict[str, Any]) -> str:
    return (f"{outcome.status}: {outcome.detail}\n{outcome.trace}\n"
            f"case.json: {json.dumps(case, ensure_ascii=False)[:4000]}")


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's notes on the odd values
@pytest.mark.parametrize("target", TARGETS)
def test_reader_keeps_the_contract(target: str, tmp_path_factory: pytest.TempPathFactory
                                   ) -> None:
    root = tmp_path_factory.mktemp(f"fuzz_{target}") / "case"
    outcomes: list[str] = []

    @settings(SETTINGS, max_examples=EXAMPLES[target])
    @given(case=STRATEGIES[target]())
    def check(case: dict[str, Any]) -> None:
        outcome = run_case(case, root, TIME_LIMIT_S, HEADROOM_MB)
        outcomes.append(outcome.status)
        assert not outcome.failed, _explain(outcome, case)

    check()
    # not vacuous: some inputs pass and some are refused
    assert "accepted" in outcomes and "refused" in outcomes, outcomes


@pytest.mark.parametrize("target", TARGETS)
def test_the_unmutated_seed_is_accepted(target: str, tmp_path: Path) -> None:
    """The fuzzer starts from valid files: with no mutation every reader accepts them."""
    cases: dict[str, dict[str, Any]] = {
        "dicom": {"target": "dicom", "seed": "both", "entry": "scan", "ops": []},
        "plan": {"target": "plan", "name": "seed.vplan.json", "kind": "edit", "ops": [],
                 "random": None, "text_ops": []},
        "markups": {"target": "markups", "name": "seed.mrk.json", "kind": "edit", "ops": [],
                    "random": None, "text_ops": []},
        "sr": {"target": "sr", "ops": []},
        "seg": {"target": "seg", "ops": []},
    }
    case = cases[target]
    outcome = run_case(case, tmp_path / "case", TIME_LIMIT_S)
    assert outcome.status == "accepted", _explain(outcome, case)


# ---- the oracle itself -----------------------------------------------------------------


def test_the_oracle_tells_refusals_from_failures(tmp_path: Path) -> None:
    from planning.errors import SeriesError

    named = tmp_path / "scan.dcm"

    def refuse() -> None:
        raise SeriesError(f"'{named}' is damaged.")

    def refuse_unnamed() -> None:
        raise SeriesError("affine_lps contains non-finite values")

    def leak() -> None:
        raise KeyError("Rows")

    def hang() -> None:
        time.sleep(30)

    assert judge(Prepared(refuse, (named.name,))).status == "refused"
    assert judge(Prepared(refuse_unnamed, (named.name,))).status == "unnamed"
    assert judge(Prepared(leak, (named.name,))).status == "uncaught"
    assert judge(Prepared(lambda: "a CT of 1 slice(s)", ())).status == "invalid"
    assert judge(Prepared(lambda: None, (), "a truncated SR was accepted")).status == "invalid"
    started = time.monotonic()
    assert judge(Prepared(hang, ()), time_limit_s=0.3).status == "hang"
    assert time.monotonic() - started < 5
