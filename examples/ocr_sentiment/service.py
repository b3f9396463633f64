"""OCR then sentiment: read the text in an image with easyocr, classify it.

Serve with ``bentolite serve service:svc`` after ``python save_models.py``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image

import bentolite as bentoml
from bentolite.io import JSON, Image, Text

__all__ = ["svc"]

transformers_runner = bentoml.transformers.get("sentiment_model:latest").to_runner()
ocr_runner = bentoml.easyocr.get("ocr_model:latest").to_runner()

svc = bentoml.Service("sentiment_analysis", runners=[transformers_runner, ocr_runner])


async def _read_text(image: PIL.Image.Image) -> str:
    # readtext gives [(box, text, confidence), ...] in reading order
    detections = await ocr_runner.readtext.async_run(np.asarray(image.convert("RGB")))
    return " ".join(text for _, text, _ in detections)


@svc.api(input=Image(), output=JSON())
async def classify(input: PIL.Image.Image) -> dict[str, Any]:
    """The text found in the image and its sentiment label and score."""
    ocr_text = await _read_text(input)
    if not ocr_text:
        return {"text": "", "label": None, "score": None}
    [sentiment] = await transformers_runner.async_run(ocr_text)
    return {"text": ocr_text, "label": sentiment["label"], "score": sentiment["score"]}


@svc.api(input=Image(), output=Text())
async def read_text(input: PIL.Image.Image) -> str:
    """Only the text found in the image."""
    return await _read_text(input)
