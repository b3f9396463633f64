"""A small service for the production-serving tests: a batchable runner that can load slowly,
fail to load, report its PID and sleep; plus a slow API for the shutdown-drain test.

Env knobs (read by the runner workers): ``PROD_SVC_INIT_S`` (seconds ``__init__`` sleeps),
``PROD_SVC_INIT_GATE`` (``__init__`` waits, at most 60 s, until this file exists: a slow load
the test ends when it has seen ``/readyz`` say 503), ``PROD_SVC_FAIL_INIT`` (``__init__``
raises when set), ``PROD_SVC_MARK_DIR`` (``nap`` leaves a file named with its PID there),
``PROD_SVC_FAIL_STARTUP`` (the API workers' ``on_startup`` hook raises); read by every process
that imports this module: ``PROD_SVC_IMPORT_MARKS`` (a file named with the importing PID is
left there), ``PROD_SVC_FAIL_IMPORT`` (the import raises).
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import bentolite
from bentolite.io import JSON, Text

__all__ = ["svc"]

if os.environ.get("PROD_SVC_IMPORT_MARKS"):
    open(os.path.join(os.environ["PROD_SVC_IMPORT_MARKS"], f"import-{os.getpid()}"), "w").close()
if os.environ.get("PROD_SVC_FAIL_IMPORT"):
    raise ZeroDivisionError("PROD_SVC_FAIL_IMPORT is set: this module refuses to import")


class Adder(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    def __init__(self) -> None:
        if os.environ.get("PROD_SVC_FAIL_INIT"):
            raise RuntimeError("PROD_SVC_FAIL_INIT is set: this model refuses to load")
        time.sleep(float(os.environ.get("PROD_SVC_INIT_S", "0")))
        gate = os.environ.get("PROD_SVC_INIT_GATE")
        deadline = time.monotonic() + 60
        while gate and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.05)

    @bentolite.Runnable.method(batchable=True, batch_dim=0)
    def add_one(self, values: list[float]) -> list[float]:
        return [v + 1 for v in values]

    @bentolite.Runnable.method(batchable=False)
    def pid(self, _: None = None) -> int:
        return os.getpid()

    @bentolite.Runnable.method(batchable=False)
    def spell(self, text: str) -> Any:
        """Stream the letters of ``text`` (runner.spell.async_stream)."""
        for letter in text:
            time.sleep(0.01)
            yield letter + "."

    @bentolite.Runnable.method(batchable=False)
    def nap(self, seconds: float) -> float:
        marks = os.environ.get("PROD_SVC_MARK_DIR")
        if marks:  # tells the test which worker is busy with a call right now
            open(os.path.join(marks, f"nap-{os.getpid()}-{time.monotonic_ns()}"), "w").close()
        time.sleep(seconds)
        return seconds


adder = bentolite.Runner(Adder, name="adder", max_batch_size=16, max_latency_ms=1000,
                         method_configs={"nap": {"max_latency_ms": 60_000}})
svc = bentolite.Service("prod_svc", runners=[adder])


@svc.on_startup
def maybe_fail(_: bentolite.Context) -> None:
    if os.environ.get("PROD_SVC_FAIL_STARTUP"):
        raise RuntimeError("PROD_SVC_FAIL_STARTUP is set: this API worker refuses to start")


@svc.api(input=JSON(), output=JSON())
async def add(values: list[float]) -> list[float]:
    """Add one to every number (batched in the runner)."""
    return await adder.add_one.async_run(values)


@svc.api(input=JSON(), output=JSON())
async def runner_pid(_: object) -> int:
    return await adder.pid.async_run(None)


@svc.api(input=JSON(), output=JSON())
async def runner_nap(seconds: float) -> float:
    return await adder.nap.async_run(seconds)


@svc.api(input=Text(), output=Text())
async def spell(text: str) -> Any:
    """The letters of the text, streamed from the runner as it yields them."""
    return adder.spell.async_stream(text)


@svc.api(input=JSON(), output=JSON())
async def slow(seconds: float) -> dict[str, object]:
    """Answer after ``seconds`` (no runner)."""
    await asyncio.sleep(seconds)
    return {"slept_s": seconds, "api_worker_pid": os.getpid()}


@svc.api(input=Text(), output=JSON())
def shout(text: str) -> dict[str, str]:
    """Upper-case the text."""
    return {"shout": text.upper()}
