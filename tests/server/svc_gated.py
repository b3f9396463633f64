"""A service whose runner loads only once a flag file exists, and whose hooks leave traces."""
from __future__ import annotations

import os
import time
from pathlib import Path

import bentolite
from bentolite.io import JSON

__all__ = ["svc"]

GATE = Path(os.environ["GATE_DIR"])


class Gated(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    def __init__(self) -> None:
        deadline = time.monotonic() + 60
        while not (GATE / "open").exists():
            if (GATE / "fail").exists():
                raise RuntimeError("model file is corrupt")
            if time.monotonic() > deadline:
                raise TimeoutError("gate never opened")
            time.sleep(0.05)

    @bentolite.Runnable.method(batchable=False)
    def predict(self, value):
        return value


gated = bentolite.Runner(Gated, name="gated_model")
svc = bentolite.Service("gated", runners=[gated])


@svc.on_shutdown
def leave_trace(ctx: bentolite.Context) -> None:
    (GATE / "shutdown-ran").write_text("yes")


@svc.api(input=JSON(), output=JSON())
def predict(obj):
    return gated.predict.run(obj)
