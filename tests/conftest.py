"""Fixtures shared by every test package (keep this small: builders live next to their tests)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so a failing test fails the same way every time."""
    return np.random.default_rng(20240314)
