"""The soak test's service (bentolite only): a batched runner method, a short nap on the model
thread, a method that raises, a 1.2 MB float32 upload to a runner (the shared-memory hop and
the kept heap), and a plain text API."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import bentolite
from bentolite.exceptions import BadInput
from bentolite.io import JSON, File, Text

__all__ = ["svc"]


class SoakModel(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=True, batch_dim=0)
    def add_one(self, values: list[float]) -> list[float]:
        return [v + 1 for v in values]

    @bentolite.Runnable.method(batchable=False)
    def nap(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @bentolite.Runnable.method(batchable=False)
    def explode(self, message: str) -> None:
        raise ValueError(message)

    @bentolite.Runnable.method(batchable=False)
    def mean(self, values: np.ndarray) -> float:
        return float(values.mean())


model = bentolite.Runner(SoakModel, name="soak_model", max_batch_size=32, max_latency_ms=5000)
svc = bentolite.Service("soak", runners=[model])


@svc.api(input=JSON(), output=JSON())
async def add(values: list[float]) -> list[float]:
    return await model.add_one.async_run(values)


@svc.api(input=JSON(), output=JSON())
async def nap(seconds: float) -> float:
    return await model.nap.async_run(seconds)


@svc.api(input=JSON(), output=JSON())
async def explode(message: str) -> None:
    return await model.explode.async_run(message)


@svc.api(input=File(mime_type="application/octet-stream"), output=JSON())
async def mean(body: Any) -> float:
    data = body.read()
    if len(data) % 4:
        raise BadInput(f"expected float32 values, got {len(data)} bytes", field="body")
    return await model.mean.async_run(np.frombuffer(data, dtype=np.float32))


@svc.api(input=Text(), output=Text())
def shout(text: str) -> str:
    return text.upper()
