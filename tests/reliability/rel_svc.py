"""One API per IO descriptor, plus a gated slow API, for the reliability tests."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pydantic

import bentolite
from bentolite.io import JSON, File, Image, Multipart, NumpyNdarray, PandasDataFrame, PandasSeries, Text

__all__ = ["svc"]

GATE = Path(os.environ.get("RELIABILITY_GATE_DIR", "/nonexistent"))


class Point(pydantic.BaseModel):
    x: float
    y: int


svc = bentolite.Service("reliability")


@svc.api(input=Text(), output=Text())
def text(value: str) -> str:
    return value


@svc.api(input=JSON(), output=JSON())
def json_any(value):
    return value


@svc.api(input=JSON(pydantic_model=Point), output=JSON())
def json_model(point: Point):
    return point.model_dump()


@svc.api(input=NumpyNdarray(dtype="float32", shape=(-1, 2), enforce_dtype=True, enforce_shape=True),
         output=NumpyNdarray())
def ndarray(arr):
    return arr * 2


@svc.api(input=PandasDataFrame(orient="records", columns=["a", "b"], dtype={"a": "int64", "b": "float64"},
                               enforce_dtype=True), output=PandasDataFrame())
def frame(df):
    return df


@svc.api(input=PandasSeries(dtype="int64", enforce_dtype=True), output=PandasSeries())
def series(s):
    return s


@svc.api(input=Image(), output=Image(mime_type="image/png"))
def image(img):
    return img


@svc.api(input=File(), output=File())
def file(f):
    return f.read()


@svc.api(input=Multipart(meta=JSON(), picture=Image()), output=JSON())
def form(meta, picture):
    return {"meta": meta, "size": list(picture.size)}


@svc.api(input=JSON(), output=JSON())
async def gated(obj):
    """Holds its slot until the gate file exists (or 60 s pass)."""
    for _ in range(1200):
        if (GATE / "open").exists():
            break
        await asyncio.sleep(0.05)
    return obj
