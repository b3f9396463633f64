"""Batching scenario on LitServe 0.2.19: the same numpy model behind a batching ``LitAPI``.

``python litserve_batching.py PORT`` serves ``POST /predict`` (a JSON ``[[64 floats]]`` body,
as the ``batching`` scenario posts) with one uvicorn API server and one model worker on the
CPU, batching up to 64 requests (``batch``/``unbatch``, LitServe's default batch_timeout), and ``GET /readyz`` for the harness.
Runs in LitServe's own venv (``scripts/peer_venv.sh litserve-0.2.19``), not the project's.
"""

from __future__ import annotations

import sys

import litserve as ls
import numpy as np
from fastapi import Response
from numpy_model import FEATURES, BatchModel

#: LitServe's wait for a fuller batch: its default, 0, was its fastest here at c=64 (914 req/s;
#: 725 with 2 ms, 628 with 10 ms, bentolite's max_wait_ms default)
BATCH_TIMEOUT_S = 0.0


class BatchedModel(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.model = BatchModel()

    def decode_request(self, request: list[list[float]]) -> np.ndarray:
        return np.asarray(request, dtype=np.float32).reshape(-1, FEATURES)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)

    def unbatch(self, output: np.ndarray) -> list[float]:
        return output.tolist()  # one row per request

    def encode_response(self, output: float) -> list[float]:
        return [output]


if __name__ == "__main__":
    server = ls.LitServer(
        BatchedModel(max_batch_size=64, batch_timeout=BATCH_TIMEOUT_S),
        accelerator="cpu", workers_per_device=1, timeout=60)
    server.app.add_api_route("/readyz", lambda: Response("ok"), methods=["GET"])
    server.run(host="127.0.0.1", port=int(sys.argv[1]), num_api_servers=1,
               generate_client_file=False, log_level="warning")
