"""Large-payload scenarios: a 640x480 JPEG through ``Image()`` and a 1x3x224x224 float32 tensor
(JSON through ``NumpyNdarray``, or raw bytes through ``File()``: BentoML 1.1's NumpyNdarray
reads JSON only), each handed to a runner that returns a small JSON summary."""

from __future__ import annotations

from typing import Any

import numpy as np
from _impl import bentoml

__all__ = ["svc", "PayloadRunnable", "TENSOR_SHAPE"]

TENSOR_SHAPE = (1, 3, 224, 224)


class PayloadRunnable(bentoml.Runnable):
    """Resizes images and summarises tensors; one worker."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    @bentoml.Runnable.method(batchable=False)
    def resize(self, image: Any) -> dict[str, Any]:
        """The image scaled to 224x224: its size and mean pixel value."""
        small = image.convert("RGB").resize((224, 224))
        return {"size": list(small.size), "mean": float(np.asarray(small).mean())}

    @bentoml.Runnable.method(batchable=False)
    def summarize(self, tensor: np.ndarray) -> dict[str, Any]:
        """Shape and per-channel means of an NCHW tensor."""
        return {"shape": list(tensor.shape),
                "channel_means": tensor.mean(axis=(0, 2, 3)).round(6).tolist()}


payload_runner = bentoml.Runner(PayloadRunnable, name="payloads")
svc = bentoml.Service("bench_payloads", runners=[payload_runner])


@svc.api(input=bentoml.io.Image(), output=bentoml.io.JSON())
async def resize(image: Any) -> dict[str, Any]:
    """Decode the posted image, resize it in the runner."""
    return await payload_runner.resize.async_run(image)


@svc.api(input=bentoml.io.NumpyNdarray(dtype="float32", shape=TENSOR_SHAPE, enforce_shape=True),
         output=bentoml.io.JSON())
async def tensor_json(tensor: np.ndarray) -> dict[str, Any]:
    """A tensor posted as JSON nested lists."""
    return await payload_runner.summarize.async_run(tensor)


@svc.api(input=bentoml.io.File(mime_type="application/octet-stream"), output=bentoml.io.JSON())
async def tensor_bin(body: Any) -> dict[str, Any]:
    """A tensor posted as raw little-endian float32 bytes."""
    tensor = np.frombuffer(body.read(), dtype="<f4").reshape(TENSOR_SHAPE)
    return await payload_runner.summarize.async_run(tensor)
