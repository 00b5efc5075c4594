"""Child process of the crash test: open the demo CT, then edit without pause (a needle
nudged 0.5 mm caudally per action), printing "step N" once action N is done. The test
kills it (SIGKILL) at a random moment."""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_API", "pyside6")


def main() -> int:
    from planning.plan import Side, Trajectory
    from tests.app.recovery_child import open_demo_window

    app, window = open_demo_window()
    doc = window.workspace.document
    step = 0
    while True:
        z = -380.0 - 0.5 * step
        needle = Trajectory("L2", Side.LEFT, (20.0, 40.0, z), (5.0, 5.0, z - 2.0))
        doc.edit(doc.plan.with_trajectory(needle), f"Nudge {step}")
        app.processEvents()
        print(f"step {step}", flush=True)
        step += 1
        time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(main())
