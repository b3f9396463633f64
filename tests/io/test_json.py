from __future__ import annotations

import dataclasses
import json
import math

import attrs
import numpy as np
import pandas as pd
import pydantic
import pytest
from io_helpers import bad_input, msg

from bentolite.exceptions import InternalServerError
from bentolite.io import JSON, DefaultJsonEncoder, from_spec


class Item(pydantic.BaseModel):
    name: str
    tags: list[int] = []


class Order(pydantic.BaseModel):
    items: list[Item]


def test_decodes_any_json_value():
    assert JSON().decode(msg('{"a":[1,2.5,"x",null]}')) == {"a": [1, 2.5, "x", None]}
    assert JSON().decode(msg("3")) == 3
    assert JSON().decode(msg(b"")) is None  # what encode(None) sends


def test_invalid_json_names_the_position():
    error = bad_input(JSON(), msg('{"a": }'))
    assert "Invalid JSON input received" in error.message
    assert "line 1 column 7" in error.message and error.field == "body"


def test_the_fast_decoder_reads_as_the_standard_library_does():
    """msgspec decodes; what it refuses the standard decoder reads or explains."""
    big = "123456789012345678901234567890"
    assert JSON().decode(msg(f'{{"n": {big}, "f": 1e-400, "s": "\\u00e9"}}')) == {
        "n": int(big), "f": 0.0, "s": "\u00e9"}
    assert JSON().decode(msg(b"\xef\xbb\xbf[1]")) == [1]  # a UTF-8 BOM
    assert JSON().decode(msg('[1]'.encode("utf-16"))) == [1]
    assert "out of range" in bad_input(JSON(), msg("[1e400]")).message
    assert "NaN is not a JSON number" in bad_input(JSON(), msg("[NaN]")).message
    assert "line 2 column 3" in bad_input(JSON(), msg('[1,\n  ]')).message


def test_non_utf8_json_is_bad_input():
    assert "UTF-8" in bad_input(JSON(), msg(b'"\xff\xfe\x00"')).message


def test_pydantic_model_instance_is_returned():
    order = JSON(pydantic_model=Order).decode(msg('{"items":[{"name":"a","tags":[1]}]}'))
    assert isinstance(order, Order) and order.items[0].tags == [1]


def test_pydantic_error_field_path_comes_from_the_first_error():
    error = bad_input(JSON(pydantic_model=Order), msg('{"items":[{"name":"a"},{"name":"b","tags":["x"]}]}'))
    assert error.field == "body.items[1].tags[0]"
    assert error.message.startswith("body.items[1].tags[0]:")
    error = bad_input(JSON(pydantic_model=Order), msg(b""))
    assert error.field == "body"


def test_validate_json_is_deprecated():
    with pytest.warns(DeprecationWarning):
        JSON(validate_json=True)


def test_encode_is_compact_utf8_and_none_is_empty():
    out = JSON().encode({"a": "é", "b": [1, 2]})
    assert out.body == '{"a":"é","b":[1,2]}'.encode()
    assert out.headers["Content-Type"] == "application/json"
    assert JSON().encode(None).body == b""
    assert JSON().encode(Item(name="x")).body == b'{"name":"x","tags":[]}'


def test_encode_refuses_nan_with_a_clear_server_error():
    with pytest.raises(InternalServerError, match="JSON"):
        JSON().encode({"x": math.nan})


def test_default_encoder_handles_common_types():
    @dataclasses.dataclass
    class Point:
        x: int

    @attrs.define
    class Box:
        size: float

    value = {
        "dc": Point(1),
        "attrs": Box(2.5),
        "arr": np.arange(3),
        "scalar": np.float32(1.5),
        "frame": pd.DataFrame({"a": [1]}),
        "model": Item(name="n"),
    }
    decoded = json.loads(json.dumps(value, cls=DefaultJsonEncoder))
    assert decoded == {
        "dc": {"x": 1},
        "attrs": {"size": 2.5},
        "arr": [0, 1, 2],
        "scalar": 1.5,
        "frame": {"a": {"0": 1}},
        "model": {"name": "n", "tags": []},
    }


def test_openapi_with_pydantic_model_uses_components():
    descriptor = JSON(pydantic_model=Order)
    assert descriptor.openapi_schema() == {"$ref": "#/components/schemas/Order"}
    schemas = descriptor.openapi_components()["schemas"]
    assert set(schemas) == {"Order", "Item"}
    assert schemas["Order"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Item"}
    assert JSON().openapi_schema() == {"type": "object"}


def test_spec_and_from_sample():
    spec = JSON(pydantic_model=Order).to_spec()
    assert spec == {"id": "bentoml.io.JSON", "args": {"has_pydantic_model": True, "has_json_encoder": True}}
    assert isinstance(from_spec(spec), JSON)
    assert JSON.from_sample(Item(name="a")).input_type() is Item
    assert JSON.from_sample({"a": 1}).input_type() is not Item
