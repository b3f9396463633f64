"""An ensemble: a custom preprocessing Runnable, then two models in parallel on its output.

Serve with ``bentolite serve service:svc`` after ``python save_models.py``.
"""
from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import PIL.Image

import bentolite as bentoml
from bentolite.io import JSON, Image

__all__ = ["MyPreprocessRunnable", "svc", "post_process"]


class MyPreprocessRunnable(bentoml.Runnable):
    """Image -> a (1, 4) float32 feature vector: the mean brightness of each quadrant."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentoml.Runnable.method(batchable=False)
    def __call__(self, image: PIL.Image.Image) -> np.ndarray:
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        half_h, half_w = max(gray.shape[0] // 2, 1), max(gray.shape[1] // 2, 1)
        quadrants = [gray[:half_h, :half_w], gray[:half_h, half_w:],
                     gray[half_h:, :half_w], gray[half_h:, half_w:]]
        features = [float(q.mean()) if q.size else 0.0 for q in quadrants]
        return np.asarray([features], dtype=np.float32)


preprocess_runner = bentoml.Runner(MyPreprocessRunnable, name="preprocess")
model_a_runner = bentoml.xgboost.get("model_a:latest").to_runner()
model_b_runner = bentoml.pytorch.get("model_b:latest").to_runner()

svc = bentoml.Service("inference_graph_demo", runners=[
    preprocess_runner,
    model_a_runner,
    model_b_runner,
])


def post_process(features: np.ndarray, results: list[Any]) -> dict[str, Any]:
    """Both models' answers side by side, as plain JSON values."""
    model_a, model_b = results
    return {
        "features": np.asarray(features).reshape(-1).tolist(),
        "model_a": np.asarray(model_a).reshape(-1).tolist(),
        "model_b": np.asarray(model_b.detach() if hasattr(model_b, "detach") else model_b)
        .reshape(-1).tolist(),
    }


@svc.api(input=Image(), output=JSON())
async def predict(input_image: PIL.Image.Image) -> dict[str, Any]:
    """Features of the image and the prediction of each model."""
    model_input = await preprocess_runner.async_run(input_image)

    results = await asyncio.gather(
        model_a_runner.async_run(model_input),
        model_b_runner.async_run(model_input),
    )

    return post_process(model_input, results)
