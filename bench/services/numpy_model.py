"""The batching scenario's model: numpy compute costing about 5 ms + 0.1 ms per row.

The cost is real CPU work (matrix products on fixed weights), not a sleep, so the model
competes for the cores like a real one. ``python numpy_model.py`` prints measured costs.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["BatchModel", "FEATURES"]

FEATURES = 64
# Work sizes tuned on the 2-core bench machine (see ``measure``): a fixed part that does not
# depend on the batch, and a per-row part proportional to the number of rows.
_FIXED_ROUNDS = 52
_FIXED_SIZE = 160
_ROW_HIDDEN = 4096
_ROW_ROUNDS = 10


class BatchModel:
    """A batchable model: ``predict(x[n, 64]) -> y[n]`` (float32)."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        # O(1) values with fixed inputs each round: no drift towards denormals (slow paths)
        self.fixed_a = rng.uniform(-1, 1, (_FIXED_SIZE, _FIXED_SIZE)).astype(np.float32)
        self.fixed_b = rng.uniform(-1, 1, (_FIXED_SIZE, _FIXED_SIZE)).astype(np.float32) / _FIXED_SIZE
        self.w_in = rng.standard_normal((FEATURES, _ROW_HIDDEN)).astype(np.float32) / FEATURES
        self.w_out = rng.standard_normal((_ROW_HIDDEN, 1)).astype(np.float32) / _ROW_HIDDEN

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Score each row of ``x``."""
        x = np.asarray(x, dtype=np.float32).reshape(-1, FEATURES)
        bias = 0.0
        for _ in range(_FIXED_ROUNDS):  # the per-call cost: independent of the batch size
            bias += float(np.tanh(self.fixed_a @ self.fixed_b)[0, 0])
        out = np.zeros((x.shape[0], 1), dtype=np.float32)
        for _ in range(_ROW_ROUNDS):  # the per-row cost
            out += np.maximum(x @ self.w_in, 0.0) @ self.w_out
        return (out[:, 0] + bias).astype(np.float32)


def measure(repeats: int = 30) -> dict[int, float]:
    """Median milliseconds of ``predict`` for a few batch sizes."""
    model = BatchModel()
    results = {}
    for rows in (1, 8, 32, 64, 100):
        x = np.ones((rows, FEATURES), dtype=np.float32)
        model.predict(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.predict(x)
            times.append((time.perf_counter() - start) * 1000)
        results[rows] = sorted(times)[len(times) // 2]
    return results


if __name__ == "__main__":
    for rows, ms in measure().items():
        print(f"rows={rows:4d}  {ms:7.2f} ms  (target {5 + 0.1 * rows:.1f} ms)")
