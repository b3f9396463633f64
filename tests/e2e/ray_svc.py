"""A v1 service with a batchable runner, for the Ray Serve tests (``ray_svc:svc``)."""
from __future__ import annotations

import os
import time
from typing import AsyncIterator, Iterator

import numpy as np

import bentolite as bentoml
from bentolite.exceptions import BadInput
from bentolite.io import JSON, NumpyNdarray, Text


class Rows(bentoml.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentoml.Runnable.method(batchable=True, batch_dim=0)
    def tag(self, rows: np.ndarray) -> np.ndarray:
        """Each row back beside the number of rows in its batch (so callers see batching)."""
        time.sleep(0.02)  # a model's fixed cost: under load, calls queue up and batch
        sizes = np.full((rows.shape[0], 1), rows.shape[0], dtype=rows.dtype)
        return np.concatenate([rows, sizes], axis=1)

    @bentoml.Runnable.method(batchable=False)
    def pid(self, sleep_s: float) -> int:
        time.sleep(sleep_s)
        return os.getpid()

    @bentoml.Runnable.method(batchable=False)
    def spell(self, text: str) -> Iterator[str]:
        """A generator: one letter at a time (streamed through Ray's streaming handle)."""
        for letter in text:
            if letter == "!":
                raise ValueError("no letter '!'")
            yield letter

    @bentoml.Runnable.method(batchable=False)
    def fail(self, kind: str) -> None:
        if kind == "input":
            raise BadInput("row 3 is negative", field="rows")
        raise ValueError(f"model exploded on {kind}")


rows_runner = bentoml.Runner(Rows, name="rows")
svc = bentoml.Service("ray_rows", runners=[rows_runner])


@svc.api(input=NumpyNdarray(dtype="float32", shape=(-1, 2), enforce_shape=True),
         output=NumpyNdarray())
async def tag(rows: np.ndarray) -> np.ndarray:
    return await rows_runner.tag.async_run(rows)


@svc.api(input=JSON(), output=JSON())
async def pid(body: dict) -> dict:
    return {"pid": await rows_runner.pid.async_run(float(body.get("sleep_s", 0)))}


@svc.api(input=Text(), output=Text())
async def spell(text: str) -> AsyncIterator[str]:
    return rows_runner.spell.async_stream(text)


@svc.api(input=JSON(), output=JSON())
async def spell_list(text: str) -> list[str]:
    return [letter async for letter in rows_runner.spell.async_stream(text)]


@svc.api(input=JSON(), output=JSON())
def fail(body: dict) -> None:  # a sync API: its runner call goes through run()
    rows_runner.fail.run(body["kind"])
