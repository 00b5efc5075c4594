"""Files that appear whole or not at all: the plan, SR, SEG, markups and mesh writers.

Why: a crash, a kill or a full disk mid-write must never leave a half-written file that a
reader might take as whole. The data goes to a temporary file beside the target, is
synced, then renamed over the target (the rename is the commit), and the folder is synced
so that the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None
                ) -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``"wb"`` or ``"w"``); it appears only once the block
    ends without an error. Its folder is created; the temporary file (hidden, ``.tmp``)
    is removed on failure."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        _fsync_dir(p.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
