"""Compare two sets of screenshots and report pages, image by image.

Why: a restructuring must leave what the surgeon sees unchanged. The test suite already
writes the main window (demo CT with a plan, training submitted, the fluoroscopy tab),
the panels and every PDF page to ``tests/artifacts``; keep a copy of that folder from
before a change and compare it with the one after:

    python -m bench.snapshots BEFORE_DIR AFTER_DIR

Per image it prints the share of pixels that differ by more than ``--tolerance`` grey
levels (of 255, on any channel) and the largest difference; images only in one folder or of
another size are listed as such. Exit status 1 when any image differs beyond ``--allow``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Difference:
    """How one image of the "after" set differs from its "before"."""

    name: str
    changed: float  # share of pixels differing by more than the tolerance
    largest: int  # the largest difference on any channel, 0–255
    note: str = ""  # "only before", "only after", "size W×H → W×H"


def compare_images(before: Path, after: Path, tolerance: int) -> Difference:
    a = np.asarray(Image.open(before).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(after).convert("RGB"), dtype=np.int16)
    if a.shape != b.shape:
        return Difference(before.name, 1.0, 255,
                          f"size {a.shape[1]}×{a.shape[0]} → {b.shape[1]}×{b.shape[0]}")
    diff = np.abs(a - b).max(axis=2)
    return Difference(before.name, float(np.mean(diff > tolerance)), int(diff.max()))


def compare_folders(before: Path, after: Path, tolerance: int = 8) -> list[Difference]:
    """Every PNG of either folder, by name."""
    names = sorted({p.name for p in before.glob("*.png")} | {p.name for p in after.glob("*.png")})
    out = []
    for name in names:
        a, b = before / name, after / name
        if not a.is_file():
            out.append(Difference(name, 1.0, 255, "only after"))
        elif not b.is_file():
            out.append(Difference(name, 1.0, 255, "only before"))
        else:
            out.append(compare_images(a, b, tolerance))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tolerance", type=int, default=8,
                        help="grey levels a pixel may change by unnoticed (default 8)")
    parser.add_argument("--allow", type=float, default=0.001,
                        help="share of changed pixels an image may have (default 0.001)")
    args = parser.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            print(f"{folder}: not a folder", file=sys.stderr)
            return 2
    worst = 0.0
    print("| image | pixels changed | largest difference | note |")
    print("|---|---|---|---|")
    for d in compare_folders(args.before, args.after, args.tolerance):
        worst = max(worst, d.changed)
        print(f"| {d.name} | {d.changed:.2%} | {d.largest} | {d.note} |")
    return 1 if worst > args.allow else 0


if __name__ == "__main__":
    sys.exit(main())
