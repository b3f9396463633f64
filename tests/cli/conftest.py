from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty BENTOLITE_HOME for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("BENTOLITE_HOME", str(path))
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    return path
