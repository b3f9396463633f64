"""Batching scenario, new style: a batchable API on the root service over ``BatchModel``.

Each request is ``{"rows": [[64 floats]]}`` (one row). The parameter is ``List[List[float]]``
converted with ``np.asarray`` in the method, so the same code runs on BentoML 1.4 and on
bentolite while bentolite's typed IO is JSON-only (an ``np.ndarray`` parameter needs it).
The batcher concatenates the callers' lists into one and splits the returned list back.
"""

from __future__ import annotations

from typing import List

import numpy as np
from _impl import bentoml
from numpy_model import FEATURES, BatchModel

__all__ = ["BatchedModel"]


@bentoml.service(workers=1, traffic={"timeout": 60})
class BatchedModel:
    """The numpy model (~5 ms + 0.1 ms/row), batched inside the service's process."""

    def __init__(self) -> None:
        self.model = BatchModel()

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=64, max_latency_ms=60000)
    def predict(self, rows: List[List[float]]) -> List[float]:
        """Score each row."""
        x = np.asarray(rows, dtype=np.float32).reshape(-1, FEATURES)
        return self.model.predict(x).tolist()
