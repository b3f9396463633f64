"""Batching scenario, new style: a batchable API on the root service over ``BatchModel``.

Each request is ``{"rows": [[64 floats]]}`` (one row), typed as BentoML 1.4 documents it:
``Annotated[np.ndarray, Shape((-1, 64)), DType("float32")]``. The batcher concatenates the
callers' arrays along dimension 0 and splits the returned array back.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from _impl import bentoml
from numpy_model import FEATURES, BatchModel

DType = bentoml.validators.DType
Shape = bentoml.validators.Shape

__all__ = ["BatchedModel"]


@bentoml.service(workers=1, traffic={"timeout": 60})
class BatchedModel:
    """The numpy model (~5 ms + 0.1 ms/row), batched inside the service's process."""

    def __init__(self) -> None:
        self.model = BatchModel()

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=64, max_latency_ms=60000)
    def predict(
        self, rows: Annotated[np.ndarray, Shape((-1, FEATURES)), DType("float32")]
    ) -> np.ndarray:
        """Score each row."""
        return self.model.predict(rows)
