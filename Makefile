# VertebroPlan — set-up, run, test, bench.  For research and training — not for clinical use.
# `make run` and `make test` set everything up on a fresh Debian machine (system packages via
# apt-get when run as root, Python packages in .venv) before they start.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

# Xvfb and GL/EGL/xcb for Qt + VTK; dcmtk, dicom3tools and poppler-utils for the tests.
APT_PKGS := python3-venv xvfb xauth libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libosmesa6 \
	libxkbcommon-x11-0 libxkbcommon0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 \
	libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 \
	libxcb-xfixes0 libxcb-xkb1 libdbus-1-3 libfontconfig1 libxrender1 libxi6 libxt6 \
	fonts-dejavu-core dcmtk dicom3tools poppler-utils binutils

# Orthanc with its DICOMweb plugin: the real PACS the tests (and `make bench`) start on loopback
# with their own configuration and ports; only `make test` and `make bench` install it, so
# `make run` does not leave a PACS service on a workstation.
TEST_APT_PKGS := orthanc orthanc-dicomweb

.PHONY: run test bench lint sysdeps testdeps venv clean package test-package fuzz

testdeps:
	@$(MAKE) --no-print-directory sysdeps APT_PKGS="$(TEST_APT_PKGS)"

sysdeps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing system packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Missing system packages. Run as root:"; \
	    echo "  apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

# uv installs the same packages as pip (one resolver for pyproject.toml) in ~15 s where pip
# took ~45 s (parallel downloads and unpacking; byte code compiled as pip does). Should uv
# fail (no wheel for this machine, say), pip does the install.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode -e '.[dev]' \
	  || $(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: sysdeps $(STAMP)

# Starts the workstation on the built-in demo CT (generated and cached on first start).
# Without a display it runs on a virtual one (xvfb-run) — set DISPLAY to see the window.
run: venv
	@if [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; then \
	  $(VENV)/bin/vertebroplan $(ARGS); \
	else \
	  echo "No DISPLAY set: starting on a virtual screen (xvfb-run)."; \
	  xvfb-run -a -s "-screen 0 1600x1000x24" $(VENV)/bin/vertebroplan $(ARGS); \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy planning

# Every test: lint (ruff, import layering, mypy on planning/), unit, GUI (Xvfb via pytest-xvfb) and DICOM tool tests.
# Two workers (pytest-xdist), a test file each at a time: much of the suite waits on servers,
# subprocesses and the screen, so two cores finish it in about 60 % of the serial time. A worker
# that crashes ends the run at once (pytest-xdist would otherwise wait for its files forever).
# Byte code is written for the run even where the machine says not to (PYTHONDONTWRITEBYTECODE):
# otherwise every worker and each of the ~20 child processes compiled the project's sources
# and pytest rewrote every test module's asserts again (~15 s of CPU).
# mypy (~30 s without its cache, as on a fresh clone) runs beside the tests, on the share of
# the cores they leave idle; its verdict is printed after theirs and fails the run as well.
TEST_WORKERS ?= 2
test: testdeps venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	@log=$$(mktemp); $(VENV)/bin/mypy planning > $$log 2>&1 & types=$$!; \
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --max-worker-restart=0 --durations=25 $(PYTEST_ARGS); \
	tests=$$?; wait $$types; typed=$$?; echo "mypy planning:"; cat $$log; rm -f $$log; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; exit $$typed

bench: venv testdeps
	$(PY) -m bench

# The long fuzz run of the DICOM loader and the plan/SR/SEG/markups importers (outside CI).
fuzz: venv
	$(PY) -m fuzz.run --cases 10000 $(ARGS)

# A one-folder bundle in dist/vertebroplan/ (PyInstaller): packaging/build.sh.
package: venv
	PY=$(PY) bash packaging/build.sh

# Builds the bundle if it is older than the sources, starts it on the demo CT under Xvfb and
# runs its command line frozen; prints its size and start time (slow; not part of `make test`).
test-package: venv
	VERTEBROPLAN_PACKAGE_TEST=1 $(PY) -m pytest -q -s -p no:cacheprovider tests/packaging $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info tests/artifacts
