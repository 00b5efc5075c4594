"""What every ``vertebroplan`` command shares: exit codes, the one-line error, progress
on stderr, and the CT, plan and anatomy a command works on. Apart from `app.cli` so the
command modules import it without a cycle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from planning.errors import VertebroPlanError
from planning.progress import Progress

if TYPE_CHECKING:
    from planning.anatomy import Anatomy
    from planning.checks import CheckContext
    from planning.plan import Plan
    from planning.volume import Volume

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(VertebroPlanError):
    """A command cannot run as asked (missing input); shown as one line."""


def stderr_progress() -> Progress:
    """Progress on stderr when it is a terminal; silent otherwise (pipes, CI)."""
    if not sys.stderr.isatty():
        return Progress()

    def show(done: int, total: int, message: str) -> None:
        pct = 100 * done // total if total else 100
        print(f"\r{message}: {pct:3d}%", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return Progress(show)


def anatomy_for(volume: Volume, args: argparse.Namespace, default: str) -> Anatomy:
    """The anatomy of the command: an imported label map, the demo CT's ground truth, or
    the automatic one from the CT (``default`` says which of the last two when the user
    did not choose), with the user's label shift applied."""
    from planning.anatomy_source import (
        AUTOMATIC,
        DEMO_TRUTH,
        LABELS,
        AnatomySource,
        is_demo_ct,
        load_anatomy,
    )

    is_demo = is_demo_ct(volume)
    kind = args.anatomy or (default if is_demo else AUTOMATIC)
    if args.labels is not None:
        kind = LABELS
    elif kind == DEMO_TRUTH and not is_demo:
        raise CliError(
            f"'{args.ct}' is not the demo CT: it has no ground truth (use --anatomy auto "
            "or --labels LABELMAP)."
        )
    source = AnatomySource(kind, labels_path=args.labels,
                           label_table=getattr(args, "label_table", "totalsegmentator"),
                           shift_labels=args.shift_labels, demo_folder=Path(args.ct))
    return load_anatomy(volume, source, stderr_progress())


def plan_on_ct(args: argparse.Namespace) -> tuple[Plan, Volume, Anatomy, CheckContext]:
    """The plan of ``args.plan`` (.vplan.json or SR) on the CT ``args.ct``, with the frame
    check (``--force-other-frame``), the anatomy and the checks' context."""
    from planning.checks import CheckContext
    from planning.interop.any_plan import load_any_plan
    from planning.interop.plan_file import FrameMismatchError, check_frame
    from planning.io import load_path

    plan = load_any_plan(args.plan)  # a broken plan is refused before the CT is read
    volume = load_path(args.ct, args.series, stderr_progress())
    try:
        plan = check_frame(
            plan, volume.frame_of_reference_uid, force_other_frame=args.force_other_frame
        )
    except FrameMismatchError as exc:
        raise CliError(f"{exc} (option --force-other-frame)") from exc
    anatomy = anatomy_for(volume, args, default="truth")
    return plan, volume, anatomy, CheckContext.build(volume, anatomy)
