from __future__ import annotations

import io

import numpy as np
import PIL.Image
import pytest
from io_helpers import bad_input, msg

from bentolite.exceptions import InvalidArgument
from bentolite.io import JSON, File, Image, Multipart, NumpyNdarray, Text, from_spec
from bentolite.io._formdata import build_form_data, parse_form_data, parse_header_params


def form(*parts: tuple[str, dict[str, str], bytes]):
    return msg(*build_form_data(parts))


def png() -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (3, 2)).save(buffer, format="PNG")
    return buffer.getvalue()


DESCRIPTOR = Multipart(image=Image(), meta=JSON(), arr=NumpyNdarray(dtype="float32"))


def test_each_part_is_decoded_by_its_descriptor_with_its_own_headers():
    values = DESCRIPTOR.decode(
        form(
            ("meta", {"Content-Type": "application/json"}, b'{"k": 1}'),
            ("image", {"Content-Type": "image/png"}, png()),
            ("arr", {}, b"[1, 2]"),
        )
    )
    assert values["meta"] == {"k": 1} and values["image"].size == (3, 2)
    assert values["arr"].dtype == np.float32


def test_field_errors_name_the_field():
    error = bad_input(DESCRIPTOR, form(("image", {"Content-Type": "image/png"}, png()), ("meta", {}, b"{}")))
    assert error.field == "arr" and "missing" in error.message
    parts = [("image", {"Content-Type": "image/png"}, png()), ("meta", {}, b"{}"), ("arr", {}, b"[1]")]
    error = bad_input(DESCRIPTOR, form(*parts, ("extra", {}, b"")))
    assert error.field == "extra" and "unexpected" in error.message
    error = bad_input(DESCRIPTOR, form(parts[0], ("meta", {}, b"{bad"), parts[2]))
    assert error.field == "meta" and "Invalid JSON" in error.message
    error = bad_input(DESCRIPTOR, form(("image", {"Content-Type": "text/plain"}, b"x"), *parts[1:]))
    assert error.field == "image"


def test_file_field_keeps_its_upload_filename():
    descriptor = Multipart(doc=File(), note=Text())
    values = descriptor.decode(
        form(
            ("doc", {"Content-Type": "text/csv", "Content-Disposition": 'form-data; filename="d.csv"'}, b"a\n"),
            ("note", {}, b"n"),
        )
    )
    assert values["doc"].name == "d.csv" and values["doc"].read() == b"a\n"


def test_non_multipart_request_is_400():
    assert "multipart/form-data" in bad_input(DESCRIPTOR, msg(b"{}", "application/json")).message


def test_encode_writes_one_part_per_field():
    descriptor = Multipart(text=Text(), image=Image(mime_type="image/png"))
    out = descriptor.encode({"text": "hé", "image": PIL.Image.new("RGB", (1, 1))})
    parts = parse_form_data(out.body, out.headers["Content-Type"])
    assert [p.name for p in parts] == ["text", "image"]
    assert parts[0].body == "hé".encode() and parts[0].content_type == "text/plain"
    assert parts[1].filename == "output.png" and parts[1].content_type == "image/png"
    decoded = descriptor.decode(out)
    assert decoded["text"] == "hé" and decoded["image"].size == (1, 1)
    with pytest.raises(InvalidArgument, match="missing image"):
        descriptor.encode({"text": "x"})


def test_nested_multipart_and_bad_fields_are_refused():
    with pytest.raises(InvalidArgument, match="nested"):
        Multipart(inner=Multipart(x=Text()))
    with pytest.raises(InvalidArgument):
        Multipart(x="not a descriptor")


def test_spec_and_schema():
    spec = DESCRIPTOR.to_spec()
    assert spec["id"] == "bentoml.io.Multipart" and spec["args"]["meta"]["id"] == "bentoml.io.JSON"
    assert from_spec(spec).to_spec() == spec
    schema = DESCRIPTOR.openapi_schema()
    assert schema["properties"]["image"] == {"type": "string", "format": "binary"}


def test_header_params_parse_quotes():
    assert parse_header_params('form-data; name="a\\"b"; filename=x.png') == (
        "form-data",
        {"name": 'a"b', "filename": "x.png"},
    )
