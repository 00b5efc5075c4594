"""Strip the symbol tables of the bundle's shared libraries, keeping only what still loads.

VTK's wheels ship their libraries with full symbol tables: stripped, the bundle is about a
fifth smaller (VTK alone by ~95 MB). PyInstaller's own `strip=True` cannot be used, because
`strip` breaks libraries that auditwheel rewrote with patchelf (numpy's and scipy's OpenBLAS
and gfortran: "ELF load command address/offset not page-aligned"). So every library is
stripped, then each is loaded (dlopen) in a separate process, and any library that loaded
before and fails after is put back as it was.

    python packaging/strip_bundle.py dist/vertebroplan
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def shared_libraries(internal: Path) -> list[Path]:
    """ELF shared objects (``*.so``, ``*.so.N``) in the bundle, symlinks left out."""
    found = []
    for path in sorted(internal.rglob("*.so*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as f:
            if f.read(4) == b"\x7fELF":
                found.append(path)
    return found


def load_failures(internal: Path, libraries: list[Path]) -> dict[str, str]:
    """``{path: dlopen error}`` for the libraries that do not load, found in a child process
    with the bundle's library folder first on the search path (as its bootloader sets it)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
        json.dump([str(p) for p in libraries], listing)
    out = Path(listing.name).with_suffix(".out.json")
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal)}
    try:
        subprocess.run([sys.executable, __file__, "--check", listing.name, str(out)],
                       env=env, check=True, timeout=600)
        return dict(json.loads(out.read_text()))
    finally:
        Path(listing.name).unlink(missing_ok=True)
        out.unlink(missing_ok=True)


def _check(listing: str, out: str) -> None:
    import ctypes

    failures = {}
    for name in json.loads(Path(listing).read_text()):
        try:
            ctypes.CDLL(name, mode=os.RTLD_LAZY | os.RTLD_LOCAL)
        except OSError as exc:
            failures[name] = str(exc)
    Path(out).write_text(json.dumps(failures))
    sys.stdout.flush()
    os._exit(0)  # some libraries' destructors do not expect to be unloaded by Python


def strip_bundle(bundle: Path) -> tuple[int, int, list[str]]:
    """Strip ``bundle``'s libraries in place; returns (bytes before, bytes after, restored)."""
    internal = bundle / "_internal"
    libraries = shared_libraries(internal)
    before = sum(p.stat().st_size for p in libraries)
    failing_before = load_failures(internal, libraries)
    restored: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vertebroplan-strip-") as backup_dir:
        backup = Path(backup_dir)
        for i, lib in enumerate(libraries):
            saved = backup / f"{i}"
            shutil.copy2(lib, saved)
            if subprocess.run(["strip", str(lib)], capture_output=True).returncode != 0:
                shutil.copy2(saved, lib)
        for _ in range(3):  # a restored library may un-break the ones that load it
            failing = load_failures(internal, libraries)
            broken = [p for p in libraries if str(p) in failing
                      and str(p) not in failing_before and str(p) not in restored]
            if not broken:
                break
            for lib in broken:
                shutil.copy2(backup / f"{libraries.index(lib)}", lib)
                restored.append(str(lib))
        still = set(load_failures(internal, libraries)) - set(failing_before)
        if still:
            raise SystemExit(f"strip_bundle: libraries no longer load: {sorted(still)}")
    after = sum(p.stat().st_size for p in libraries)
    return before, after, [str(Path(r).relative_to(internal)) for r in restored]


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--check":
        _check(argv[1], argv[2])
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    if not sys.platform.startswith("linux") or shutil.which("strip") is None:
        print("strip_bundle: not on Linux with binutils' strip: left as built")
        return 0
    before, after, restored = strip_bundle(Path(argv[0]))
    print(f"Stripped the libraries: {before / 1e6:.0f} MB → {after / 1e6:.0f} MB"
          + (f"; {len(restored)} kept as built (they, or a library they load, break when "
             f"stripped: {', '.join(sorted({r.split('/')[0] for r in restored}))})"
             if restored else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
