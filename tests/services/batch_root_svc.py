"""A root service with a batchable API: it runs in a worker process of its own."""
from __future__ import annotations

import os
import time
import typing as t

import bentolite as bentoml


@bentoml.service
class BatchRoot:
    @bentoml.api(batchable=True, max_batch_size=32)
    def square(self, xs: t.List[int]) -> t.List[t.Any]:
        time.sleep(0.02)  # calls pile up meanwhile and batch together
        return [[x * x, len(xs), os.getpid()] for x in xs]

    @bentoml.api
    async def pid(self) -> int:
        return os.getpid()
