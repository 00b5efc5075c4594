"""Recovery files: every plan edit is on disk within a moment, so a crash loses nothing.

Each running instance writes its own ``recovery-<pid>.vplan.json`` (an ordinary plan file,
written atomically, with a ``"recovery"`` block naming the CT it belongs to). A clean exit
deletes it; a file whose process is gone is what the next start offers to recover. The
folder holds plans with patient coordinates, so it lives in the user's own data folder.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

from planning.errors import VertebroPlanError
from planning.interop.plan_file import load_plan, save_plan
from planning.plan import Plan

RECOVERY_ENV = "VERTEBROPLAN_RECOVERY_DIR"
PREFIX, SUFFIX = "recovery-", ".vplan.json"


def default_folder() -> Path:
    """``$VERTEBROPLAN_RECOVERY_DIR``, else ``$XDG_DATA_HOME/vertebroplan/recovery``
    (``~/.local/share/vertebroplan/recovery``): the user's own data folder."""
    if os.environ.get(RECOVERY_ENV):
        return Path(os.environ[RECOVERY_ENV])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vertebroplan" / "recovery"


@dataclass(frozen=True)
class Recovery:
    """An unsaved plan left by an instance that did not exit cleanly."""

    file: Path
    plan: Plan
    ct_source: str  # the CT's file or folder ("" for the demo CT: "demo")
    series_uid: str
    plan_path: str  # the plan's own file when it had one, else ""
    saved_at: float  # seconds since the epoch


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process nobody has reaped yet (a zombie) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


class Autosave:
    """This instance's recovery file."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()
        self.file = self.folder / f"{PREFIX}{os.getpid()}{SUFFIX}"

    def write(self, plan: Plan, ct_source: str, series_uid: str, plan_path: str = "") -> Path:
        """Save ``plan`` with the CT it belongs to (atomic: a crash mid-write keeps the old)."""
        block = {"ct_source": ct_source, "series_uid": series_uid, "plan_path": plan_path,
                 "saved_at": time.time()}
        extra = tuple((k, v) for k, v in plan.extra if k != "recovery")
        return save_plan(dataclasses.replace(plan, extra=(*extra, ("recovery", block))),
                         self.file)

    def clear(self) -> None:
        """The plan is saved or deliberately discarded: nothing to recover."""
        self.file.unlink(missing_ok=True)

    def pending(self) -> list[Recovery]:
        """Recovery files of instances that are no longer running, newest first."""
        found = []
        if not self.folder.is_dir():
            return []
        for path in self.folder.glob(f"{PREFIX}*{SUFFIX}"):
            pid_text = path.name[len(PREFIX):-len(SUFFIX)]
            if not pid_text.isdigit() or _alive(int(pid_text)):
                continue
            try:
                plan = load_plan(path)
            except VertebroPlanError:
                continue  # unreadable leftovers are not offered (and not deleted)
            extra = dict(plan.extra)
            block = extra.pop("recovery", {})
            if not isinstance(block, dict):
                continue
            found.append(Recovery(
                file=path,
                plan=dataclasses.replace(plan, extra=tuple(extra.items())),
                ct_source=str(block.get("ct_source", "")),
                series_uid=str(block.get("series_uid", "")),
                plan_path=str(block.get("plan_path", "")),
                saved_at=float(block.get("saved_at", 0.0) or 0.0),
            ))
        return sorted(found, key=lambda r: -r.saved_at)

    @staticmethod
    def discard(recovery: Recovery) -> None:
        recovery.file.unlink(missing_ok=True)
