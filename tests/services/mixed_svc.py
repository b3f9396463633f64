"""A new-style root depending on a v1 runner (``runner_service``), with two API workers and
startup/shutdown hooks that leave a trace in ``$MIXED_HOOK_LOG``."""
from __future__ import annotations

import os
import typing as t

import bentolite as bentoml


class Doubler(bentoml.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentoml.Runnable.method(batchable=True)
    def double(self, xs: t.List[int]) -> t.List[t.Any]:
        return [[2 * x, len(xs), os.getpid()] for x in xs]


doubler = bentoml.Runner(Doubler, name="doubler")
DoublerService = bentoml.runner_service(doubler)


def _note(event: str) -> None:
    path = os.environ.get("MIXED_HOOK_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{event} {os.getpid()}\n")


@bentoml.service(workers=2, resources={"cpu": 1})
class Mixed:
    doubler = bentoml.depends(DoublerService)

    @bentoml.on_startup
    def started(self) -> None:
        _note("startup")

    @bentoml.on_shutdown
    async def stopped(self) -> None:
        _note("shutdown")

    @bentoml.api
    async def double(self, xs: t.List[int]) -> t.Dict[str, t.Any]:
        rows = await self.doubler.to_async.double(xs)
        return {"rows": rows, "api_pid": os.getpid()}
