"""Batching scenario: a batchable numpy model behind a NumpyNdarray API (1x64 float32 rows)."""

from __future__ import annotations

import numpy as np
from _impl import bentoml
from numpy_model import FEATURES

__all__ = ["svc", "BatchRunnable"]

batch_model_ref = bentoml.models.get("bench_batch_model:latest")


class BatchRunnable(bentoml.Runnable):
    """Runs the saved ``BatchModel``; one worker (it may use several threads)."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self) -> None:
        self.model = bentoml.picklable_model.load_model(batch_model_ref)

    @bentoml.Runnable.method(batchable=True, batch_dim=0)
    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Score each row."""
        return self.model.predict(rows)


batch_runner = bentoml.Runner(BatchRunnable, name="batch_model", models=[batch_model_ref])
svc = bentoml.Service("bench_batching", runners=[batch_runner])


@svc.api(
    input=bentoml.io.NumpyNdarray(dtype="float32", shape=(-1, FEATURES), enforce_shape=True),
    output=bentoml.io.NumpyNdarray(),
)
async def predict(rows: np.ndarray) -> np.ndarray:
    """Score the posted rows through the batching runner."""
    return await batch_runner.predict.async_run(rows)
