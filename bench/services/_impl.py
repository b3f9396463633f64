"""Pick the implementation under test: ``BENCH_IMPL=bentolite`` or ``bentoml`` (default)."""

from __future__ import annotations

import importlib
import os

__all__ = ["bentoml"]

bentoml = importlib.import_module(
    "bentolite" if os.environ.get("BENCH_IMPL") == "bentolite" else "bentoml"
)
