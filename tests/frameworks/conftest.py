"""Fixtures for framework tests: one tmp store per session, tiny models built once."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def store_home(tmp_path_factory: pytest.TempPathFactory):
    """A fresh ``BENTOLITE_HOME`` for the whole session (models are saved once and shared)."""
    home = tmp_path_factory.mktemp("bentolite_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOLITE_HOME", str(home))
        mp.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        yield home


@pytest.fixture(autouse=True)
def _use_store_home(store_home, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BENTOLITE_HOME", str(store_home))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
