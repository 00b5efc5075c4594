"""Every app test gets its own settings file, recovery folder, study cache and case list
(never the user's)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_user_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VERTEBROPLAN_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("VERTEBROPLAN_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.setenv("VERTEBROPLAN_CACHE", str(tmp_path / "study-cache"))
    monkeypatch.setenv("VERTEBROPLAN_DATA", str(tmp_path / "user-data"))


@pytest.fixture(scope="session")
def demo(shared_demo_ct):
    """The demo CT, its truth, and the anatomy made from the truth (exact): what most
    window tests plan on."""
    from planning.anatomy.from_demo import anatomy_from_demo_truth

    volume, truth = shared_demo_ct
    return volume, truth, anatomy_from_demo_truth(truth)
