"""Every descriptor's OpenAPI pieces form a valid OpenAPI 3.0 document."""
from __future__ import annotations

import pydantic
from openapi_spec_validator import validate

from bentolite.io import (
    JSON,
    File,
    Image,
    Multipart,
    NumpyNdarray,
    PandasDataFrame,
    PandasSeries,
    Text,
    from_spec,
)


class Query(pydantic.BaseModel):
    text: str
    top_k: int = 3


DESCRIPTORS = {
    "text": Text(),
    "json": JSON(),
    "model": JSON(pydantic_model=Query),
    "ndarray": NumpyNdarray(dtype="float32", shape=(-1, 4)),
    "frame": PandasDataFrame(columns=["a", "b"]),
    "series": PandasSeries(),
    "image": Image(allowed_mime_types=["image/png", "image/jpeg"]),
    "file": File(),
    "multipart": Multipart(query=JSON(pydantic_model=Query), image=Image()),
}


def test_openapi_document_is_valid_and_specs_round_trip():
    paths, schemas = {}, {}
    for name, descriptor in DESCRIPTORS.items():
        paths[f"/{name}"] = {
            "post": {
                "requestBody": descriptor.openapi_request_body(),
                "responses": {"200": descriptor.openapi_responses()},
            }
        }
        schemas.update((descriptor.openapi_components() or {}).get("schemas", {}))
        rebuilt = from_spec(descriptor.to_spec())
        assert type(rebuilt) is type(descriptor)
        if name not in ("model", "multipart"):  # a model class cannot travel in a spec
            assert rebuilt.to_spec() == descriptor.to_spec()
    document = {
        "openapi": "3.0.2",
        "info": {"title": "io", "version": "None"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    validate(document)
    assert set(schemas) == {"Query"}


def test_from_sample_gives_the_openapi_example():
    import numpy as np
    import pandas as pd

    assert NumpyNdarray.from_sample(np.array([[1, 2]])).openapi_example() == [[1, 2]]
    assert JSON.from_sample({"a": 1}).openapi_example() == {"a": 1}
    assert JSON.from_sample(Query(text="hi")).openapi_example() == {"text": "hi", "top_k": 3}
    assert Text.from_sample("hello").openapi_request_body()["content"]["text/plain"]["example"] == "hello"
    frame = pd.DataFrame({"a": [1], "b": ["x"]})
    assert PandasDataFrame.from_sample(frame).openapi_example() == [{"a": 1, "b": "x"}]
    assert PandasSeries.from_sample(pd.Series([1.5])).openapi_example() == [1.5]
    assert NumpyNdarray().openapi_example() is None
