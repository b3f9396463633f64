"""The IO of new-style APIs: request models from type hints, responses from return values."""
from __future__ import annotations

import asyncio
import io
import json
import pathlib
import typing as t

import numpy as np
import pandas as pd
import pydantic
import pytest
from hypothesis import given, strategies as st
from openapi_spec_validator import validate
from PIL import Image

import bentolite as bentoml
from bentolite.exceptions import BadInput
from bentolite.io._formdata import build_form_data
from bentolite.io.base import HTTPMessage
from bentolite.io.typed import TypedInput, TypedOutput
from bentolite.validators import DType, Shape


class Item(pydantic.BaseModel):
    name: str
    tags: t.List[str] = []


class Api:
    def scalars(self, text: str, n: int, ratio: float = 0.5, flag: bool = False,
                mode: t.Literal["a", "b"] = "a", maybe: t.Optional[int] = None) -> str: ...

    def nested(self, items: t.List[Item], table: t.Dict[str, t.List[int]]) -> t.Dict[str, t.Any]: ...

    def arrays(self, rows: t.Annotated[np.ndarray, Shape((-1, 3)), DType("float32")]
               ) -> np.ndarray: ...

    def frame(self, df: pd.DataFrame) -> pd.DataFrame: ...

    def files(self, image: Image.Image, doc: pathlib.Path, note: str = "") -> t.Dict[str, t.Any]: ...

    def raw(self, text: str, /) -> str: ...

    def stream(self, n: int) -> t.Generator[str, None, None]: ...

    def with_ctx(self, text: str, ctx: bentoml.Context) -> str: ...


def json_msg(value: t.Any) -> HTTPMessage:
    return HTTPMessage(json.dumps(value).encode(), {"Content-Type": "application/json"})


def decode(method: t.Any, msg: HTTPMessage) -> dict[str, t.Any]:
    return TypedInput(method).decode(msg)


def test_named_parameters_defaults_and_unknown_keys() -> None:
    got = decode(Api.scalars, json_msg({"text": "hi", "n": "3", "extra": 1}))
    assert got == {"text": "hi", "n": 3, "ratio": 0.5, "flag": False, "mode": "a", "maybe": None}
    assert decode(Api.with_ctx, json_msg({"text": "x"})) == {"text": "x"}  # ctx is not input


@pytest.mark.parametrize("body,field,words", [
    ({"n": 1}, "body.text", "required"),
    ({"text": "a", "n": "three"}, "body.n", "integer"),
    ({"text": "a", "n": 1, "mode": "c"}, "body.mode", "'a' or 'b'"),
    ([1, 2], "body", "object"),
])
def test_bad_input_names_the_field(body: t.Any, field: str, words: str) -> None:
    with pytest.raises(BadInput) as caught:
        decode(Api.scalars, json_msg(body))
    assert caught.value.field == field and words in caught.value.message


def test_nested_models_and_their_error_paths() -> None:
    got = decode(Api.nested, json_msg({"items": [{"name": "a"}], "table": {"x": [1]}}))
    assert got["items"] == [Item(name="a")] and got["table"] == {"x": [1]}
    with pytest.raises(BadInput) as caught:
        decode(Api.nested, json_msg({"items": [{"name": "a"}, {"tags": []}], "table": {}}))
    assert caught.value.field == "body.items[1].name"
    with pytest.raises(BadInput) as caught:
        decode(Api.nested, HTTPMessage(b"{not json", {"Content-Type": "application/json"}))
    assert caught.value.field == "body"


def test_arrays_are_built_and_checked() -> None:
    got = decode(Api.arrays, json_msg({"rows": [[1, 2, 3], [4, 5, 6]]}))["rows"]
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (2, 3)
    for rows, words in (([[1, 2]], "expected shape (-1, 3)"), ([[1, "x", 3]], "float32"),
                        ([[1, 2, 3], [4]], "")):
        with pytest.raises(BadInput) as caught:
            decode(Api.arrays, json_msg({"rows": rows}))
        assert caught.value.field == "body.rows" and words in caught.value.message


def test_dataframes_from_records_or_columns() -> None:
    records = decode(Api.frame, json_msg({"df": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}))["df"]
    columns = decode(Api.frame, json_msg({"df": {"a": [1, 3], "b": [2, 4]}}))["df"]
    pd.testing.assert_frame_equal(records, columns)
    out = TypedOutput(Api.frame).encode(records)
    assert json.loads(out.body) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_files_and_images_arrive_as_multipart() -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(png, format="PNG")
    body, content_type = build_form_data([
        ("image", {"Content-Type": "image/png"}, png.getvalue()),
        ("doc", {"Content-Disposition": 'form-data; name="doc"; filename="notes.txt"',
                 "Content-Type": "text/plain"}, b"hello file"),
        ("note", {}, b'"a note"'),
    ])
    got = decode(Api.files, HTTPMessage(body, {"Content-Type": content_type}))
    assert got["image"].size == (4, 3) and got["note"] == "a note"
    assert got["doc"].suffix == ".txt" and got["doc"].read_bytes() == b"hello file"
    with pytest.raises(BadInput) as caught:  # a file sent as JSON cannot be a file
        decode(Api.files, json_msg({"image": "x", "doc": "y"}))
    assert caught.value.field in ("body.image", "body.doc")
    assert TypedInput(Api.files).openapi_request_body()["content"].keys() == {"multipart/form-data"}


def test_a_positional_only_parameter_takes_the_raw_body() -> None:
    assert decode(Api.raw, HTTPMessage(b"plain text", {"Content-Type": "text/plain"})) == {
        "text": "plain text"}


def test_outputs() -> None:
    text = TypedOutput(Api.scalars).encode("hi")
    assert (text.body, text.content_type) == (b"hi", "text/plain")
    arrays = TypedOutput(Api.arrays).encode(np.array([[1.5, 2]], dtype=np.float32))
    assert json.loads(arrays.body) == [[1.5, 2.0]] and arrays.content_type == "application/json"
    mixed = TypedOutput(Api.nested).encode({"x": np.float32(2.5), "m": Item(name="n")})
    assert json.loads(mixed.body) == {"x": 2.5, "m": {"name": "n", "tags": []}}
    image = TypedOutput(Api.files).encode(Image.new("RGB", (2, 2)))
    assert image.content_type == "image/png" and Image.open(io.BytesIO(image.body)).size == (2, 2)


def test_generators_stream() -> None:
    output = TypedOutput(Api.stream)
    assert output.is_stream

    def words() -> t.Iterator[t.Any]:
        yield "a "
        yield {"b": 1}

    async def collect() -> list[bytes]:
        return [chunk async for chunk in output.encode_stream(words())]

    assert output.is_streaming(words())
    assert asyncio.run(collect()) == [b"a ", b'{"b":1}\n']


@given(st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
def test_scalar_round_trip(text: str, n: int, ratio: float) -> None:
    typed = TypedInput(Api.scalars)
    sent = {"text": text, "n": n, "ratio": ratio, "flag": True, "mode": "b", "maybe": n}
    assert typed.decode(typed.encode(sent)) == sent


def test_openapi_document_of_a_new_style_service_is_valid() -> None:
    @bentoml.service
    class Typed:
        @bentoml.api
        def scalars(self, text: str, n: int = 1) -> str:
            return text * n

        @bentoml.api
        def nested(self, items: t.List[Item]) -> t.List[Item]:
            return items

        @bentoml.api
        def arrays(self, rows: t.Annotated[np.ndarray, Shape((-1, 3))]) -> np.ndarray:
            return rows

        @bentoml.api
        def files(self, image: Image.Image, doc: pathlib.Path) -> pathlib.Path:
            return doc

    spec = Typed.as_service().openapi_spec
    validate(spec)
    body = spec["paths"]["/nested"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Item"}
    assert "Item" in spec["components"]["schemas"]
