#!/usr/bin/env bash
# Build VertebroPlan as a one-folder bundle in dist/vertebroplan/ (`make package`).
#
#   packaging/build.sh    # PY=.venv/bin/python by default; CLEAN=1 drops build/ first;
#                         # STRIP=0 keeps the libraries' symbol tables
#
# Installs PyInstaller (>= 6) into the venv when it is missing, freezes the app with
# packaging/vertebroplan.spec, then puts beside the executable: VERSION (the version in
# pyproject.toml), the desktop entry, the icon and install-desktop.sh. The bundle runs on
# machines like the build machine (same or newer glibc, x86_64), with no Python installed;
# it still needs the system's X11/xcb, OpenGL and fontconfig libraries that `make run`
# installs (see APT_PKGS in the Makefile).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PY:-.venv/bin/python}
out=dist/vertebroplan

if ! "$PY" -c 'import sys, PyInstaller; sys.exit(int(PyInstaller.__version__.split(".")[0]) < 6)' \
    2>/dev/null; then
  echo "Installing PyInstaller into $(dirname "$(dirname "$PY")")"
  "$PY" -m pip install -q "pyinstaller>=6"
fi

version=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

if [ "${CLEAN:-0}" = "1" ]; then
  rm -rf build/vertebroplan "$out"
fi
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --log-level "${PYINSTALLER_LOG_LEVEL:-WARN}" \
  --distpath dist --workpath build packaging/vertebroplan.spec

if [ "${STRIP:-1}" = "1" ]; then
  "$PY" packaging/strip_bundle.py "$out"
fi

printf '%s\n' "$version" > "$out/VERSION"
cp packaging/vertebroplan.desktop packaging/install-desktop.sh "$out/"
cp resources/vertebroplan.png resources/vertebroplan.svg "$out/"
chmod +x "$out/install-desktop.sh"

size_mb=$(du -sm "$out" | cut -f1)
echo "Built $out (VertebroPlan $version): ${size_mb} MB in $(( $(date +%s) - start )) s."
echo "Run it: $out/vertebroplan   (command line: $out/vertebroplan --help)"
echo "Menu entry and icon for this user: $out/install-desktop.sh"
