"""A service for the production-mode reliability tests and bench/soak.py: a batchable runner
method, a napping one (holds the model thread), one that raises, and a PID probe."""
from __future__ import annotations

import os
import time

import bentolite
from bentolite.io import JSON, Text

__all__ = ["svc"]


class Model(bentolite.Runnable):
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
    def pid(self, _: None = None) -> int:
        return os.getpid()


model = bentolite.Runner(Model, name="rel_model", max_batch_size=32, max_latency_ms=5000)
svc = bentolite.Service("rel_prod", runners=[model])


@svc.api(input=JSON(), output=JSON())
async def add(values: list[float]) -> list[float]:
    return await model.add_one.async_run(values)


@svc.api(input=JSON(), output=JSON())
async def nap(seconds: float) -> float:
    return await model.nap.async_run(seconds)


@svc.api(input=JSON(), output=JSON())
async def explode(message: str) -> None:
    return await model.explode.async_run(message)


@svc.api(input=JSON(), output=JSON())
async def runner_pid(_: object) -> int:
    return await model.pid.async_run(None)


@svc.api(input=Text(), output=Text())
def shout(text: str) -> str:
    return text.upper()
