"""The one version number of VertebroPlan (the installed package's, from pyproject.toml),
written into every exported object and shown by ``--version``."""

from __future__ import annotations


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vertebroplan")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.1.0"


__version__ = _version()
