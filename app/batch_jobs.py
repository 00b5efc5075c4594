"""The work of one study in a batch, as a Dask worker runs it (no Qt).

`run_study` reads the CT (a path every worker sees, or the PACS through the shared study
cache), finds the anatomy, assesses every level, plans the asked levels, checks the needles
and writes the study's plan (and the asked exports) under ``OUTDIR/studies/<key>/``. Any
failure becomes the study's "failed" row with the error in words, so the batch goes on; the
result file written last marks the study done for a rerun.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planning.batch.inputs import StudyTask
from planning.batch.rows import failure_row, level_rows
from planning.batch.table import write_result
from planning.errors import VertebroPlanError

LEVEL_CHOICES = ("fractured", "all")


@dataclass(frozen=True)
class BatchOptions:
    """What every study of the batch does (picklable: it travels to the workers)."""

    levels: str = "fractured"  # "fractured", "all" or "T12,L1"
    gauge: str = "11G"
    pdf: bool = False
    sr: bool = False
    send: str | None = None
    cache_dir: str | None = None  # the study cache for PACS inputs (a path workers share)
    ae_title: str = "VERTEBROPLAN"
    port: int = 11112
    method: str = "get"


def _levels_to_plan(options: BatchOptions, anatomy: Any, assessment: dict[str, Any],
                    notes: dict[str, str]) -> list[str]:
    """The levels asked for, as this CT names them.

    "fractured" takes graded fractures only, and only when the names are confident: a
    fracture on a level whose name is uncertain is reported, not planned (issue 21)."""
    from planning.anatomy.model import names_uncertain
    from planning.autoplan import NOT_PROPOSED_BY_DEFAULT
    from planning.plan import validate_level

    found = list(anatomy.levels)
    if options.levels == "all":  # as Propose does: the sacrum only when asked by name
        for name in found:
            if name in NOT_PROPOSED_BY_DEFAULT:
                notes[name] = NOT_PROPOSED_BY_DEFAULT[name]
        return [n for n in found if n not in NOT_PROPOSED_BY_DEFAULT]
    if options.levels == "fractured":
        fractured = [n for n in found if n in assessment and assessment[n].fractured]
        if fractured and names_uncertain(anatomy):
            for name in fractured:
                notes[name] = "fractured, not planned: the level names are uncertain"
            return []
        return fractured
    asked = [validate_level(n.strip()) for n in options.levels.split(",") if n.strip()]
    for name in asked:
        if name not in anatomy.levels:
            notes[name] = "asked for, not found in this CT"
    return [n for n in asked if n in anatomy.levels]


def _load(task: StudyTask, options: BatchOptions) -> Any:
    from planning.io import load_path

    if task.kind != "pacs":
        return load_path(task.source, task.series_uid or None)
    from planning.pacs.cache import StudyCache
    from planning.pacs.node import LocalAE, parse_node
    from planning.pacs.retrieve import retrieve

    cache = StudyCache(options.cache_dir)
    (report,) = retrieve(parse_node(task.source), task.study_uid, cache,
                         series_uid=task.series_uid, method=options.method,
                         local=LocalAE(options.ae_title, options.port))
    if report.missing:
        raise VertebroPlanError(f"the retrieval partly failed: {report.describe()}")
    cache.touch(task.study_uid)
    return load_path(report.folder, task.series_uid)


def plan_study(task: StudyTask, outdir: Path, options: BatchOptions) -> dict[str, Any]:
    """Plan one study; raises on failure (see `run_study`)."""
    from planning.anatomy.from_ct import anatomy_from_ct
    from planning.anatomy.pedicles import measure_pedicles
    from planning.assessment.levels import assess_levels
    from planning.autoplan import propose
    from planning.checks import CheckContext
    from planning.interop.plan_file import save_plan
    from planning.plan import gauge

    needle = gauge(options.gauge)
    folder = outdir / "studies" / task.key
    folder.mkdir(parents=True, exist_ok=True)
    volume = _load(task, options)
    anatomy = anatomy_from_ct(volume)
    assessment = assess_levels(volume, anatomy, gauge=needle.name)
    notes: dict[str, str] = {}
    levels = _levels_to_plan(options, anatomy, assessment, notes)
    proposal = None
    written: list[str] = []
    if levels:
        ctx = CheckContext.build(volume, anatomy)
        proposal = propose(volume, anatomy, ctx, levels, needle.name)
        for name, why in proposal.omitted.items():
            notes[name] = why
        for (name, side), why in proposal.notes.items():
            if proposal.plan.get(name, side) is None:
                notes[name] = "; ".join(filter(None, (notes.get(name), why)))
        plan_path = save_plan(proposal.plan, folder / "plan.vplan.json")
        written.append(str(plan_path))
        if proposal.plan.trajectories and (options.pdf or options.sr or options.send):
            from app.export_job import ExportRequest, export_plan

            request = ExportRequest(
                pdf_path=folder / "report.pdf" if options.pdf else None,
                sr_path=folder / "plan_sr.dcm" if options.sr else None,
                send_to=options.send, with_3d=False)
            report = export_plan(volume, proposal.plan, proposal.results, anatomy, request,
                                 assessment=assessment)
            written += [str(p) for p in report.written]
    widths = {name: {side: float(g.isthmus_width_mm) for side, g in sides.items()}
              for name, sides in measure_pedicles(anatomy).items()}
    rows = level_rows(task, anatomy, assessment, proposal, widths, levels, notes)
    return {"rows": rows, "written": written, "warnings": list(anatomy.warnings)}


def run_study(task: StudyTask, outdir: str, options: BatchOptions) -> dict[str, Any]:
    """Plan one study and record it as done (result file), failed or not; returns a short
    summary for the driver's progress line."""
    out = Path(outdir)
    t0 = time.monotonic()
    try:
        result = plan_study(task, out, options)
        status, error = "done", ""
    except Exception as exc:  # a failing study, even by a bug, must not stop the batch
        expected = isinstance(exc, VertebroPlanError | OSError | ValueError)
        status = "failed"
        error = (str(exc) or type(exc).__name__) if expected else \
            f"internal error: {type(exc).__name__}: {exc}"
        result = {"rows": [failure_row(task, error)], "written": [], "warnings": []}
    seconds = time.monotonic() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result |= {"task": task.to_json(), "status": status, "error": error,
               "seconds": round(seconds, 2), "worker_peak_rss_mb": round(peak_mb, 1)}
    write_result(out, task.key, result)
    return {"key": task.key, "status": status, "error": error, "seconds": seconds,
            "levels": len(result["rows"]), "peak_mb": peak_mb}
