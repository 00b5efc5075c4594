"""The harness's count of bilateral pairs and of what limits the other levels
(`bench/accuracy_pairs.py`), on proposals written by hand."""

from __future__ import annotations

from bench.accuracy_pairs import count_pairs, unpaired_cause
from planning.autoplan import Proposal
from planning.plan import Plan, Side, Trajectory


def _needle(level: str, side: Side) -> Trajectory:
    x = 20.0 if side is Side.LEFT else -20.0
    return Trajectory(level, side, (x, 40.0, 0.0), (x / 4, 0.0, 0.0))


def _proposal() -> Proposal:
    plan = Plan(trajectories=(_needle("L1", Side.LEFT), _needle("L1", Side.RIGHT),
                              _needle("L2", Side.LEFT), _needle("L4", Side.RIGHT),
                              _needle("L5", Side.LEFT), _needle("T12", Side.RIGHT)))
    # the planner's refusals open alike; what stopped the best path follows "the best one:"
    refused = ("{side} {level}: every 11G path the search tried checks unsafe or passes the "
               "automatically found canal nearer than its wall's uncertainty allows (the best "
               "one: {best}; the needle breaches the medial pedicle wall by 1.0 mm)")
    notes = {
        ("L2", Side.RIGHT): "Right L2: no 11G path stays in the bone from the pedicle to the "
                            "body; no 13G path stays in the bone from the pedicle to the body",
        ("L3", Side.LEFT): refused.format(side="Left", level="L3", best=(
            "2.5 mm from the automatically found canal where 5.0 mm are needed (its wall "
            "there is soft tissue)")),
        ("L3", Side.RIGHT): "Right L3 pedicle: no cross-section of the pedicle found",
        ("L4", Side.LEFT): refused.format(side="Left", level="L4", best=(
            "only 0.7 mm from the spinal canal (keep at least 2.0 mm)")),
        ("L5", Side.RIGHT): "Right L5: something the harness has no word for",
        ("T12", Side.LEFT): refused.format(side="Left", level="T12", best=(
            "the needle enters the spinal canal by 0.4 mm (grade B)")),
    }
    return Proposal(plan, notes, omitted={
        "L3": "L3: no safe path through either pedicle",
        "S1": "S1: the sacrum is not planned automatically (sacroplasty takes other "
              "approaches); ask for S1 by name to plan it through its pedicles",
        "T11": "T11: not proposed automatically: the CT's voxels are 0.8 × 0.8 × 5.0 mm, "
               "coarser than the 3 mm on which the automatic anatomy was measured; place the "
               "needles by hand (the checks still run) or load a thin-slice reconstruction"})


def test_each_level_is_paired_or_given_the_cause_its_notes_name() -> None:
    p = _proposal()
    assert unpaired_cause(p, "L1") is None
    assert unpaired_cause(p, "L2") == "no corridor in the bone"
    # both sides missing: the left side's note decides, and the margin comes before the
    # breach it also mentions
    assert unpaired_cause(p, "L3") == "canal margin (the wall's uncertainty)"
    assert unpaired_cause(p, "L4") == "within the canal's caution distance"
    assert unpaired_cause(p, "L5") == "other"
    assert unpaired_cause(p, "T12") == "through the canal"
    assert unpaired_cause(p, "S1") == "the sacrum (not planned automatically)", "no notes"
    assert unpaired_cause(p, "T11") == ("voxels coarser than measured (not planned "
                                        "automatically)")


def test_the_count_over_levels() -> None:
    paired, causes = count_pairs(_proposal(), ["L1", "L2", "L3", "L4", "L5"])
    assert paired == 1
    assert causes == {"no corridor in the bone": 1, "canal margin (the wall's uncertainty)": 1,
                      "within the canal's caution distance": 1, "other": 1}
