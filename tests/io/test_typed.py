"""Typed IO of new-style APIs: request models from signatures, responses from return types."""
from __future__ import annotations

import asyncio
import inspect
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, AsyncGenerator, Callable, Generator, Literal

import numpy as np
import pandas as pd
import PIL.Image
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from io_helpers import bad_input, msg
from openapi_spec_validator import validate

import bentolite
from bentolite.exceptions import InternalServerError, InvalidArgument
from bentolite.io import from_spec
from bentolite.io._formdata import build_form_data
from bentolite.io.typed import TypedInput, TypedOutput, service_schema, service_schema_route
from bentolite.server.openapi import openapi_spec
from bentolite.validators import ContentType, DataframeSchema, DType, Shape

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Item(pydantic.BaseModel):
    name: str
    tags: list[str] = []


class Order(pydantic.BaseModel):
    items: list[Item]
    note: str | None = None


class Opaque:
    """A type pydantic cannot validate."""


Matrix = Annotated[np.ndarray, Shape((2, 2)), DType("float32")]


class Svc:
    """The methods under test, as a new-style service class defines them."""

    def scalars(self, text: str, n: int = 3, ratio: float = 0.5, flag: bool = False, nothing: None = None) -> str:
        return text * n

    def containers(self, xs: list[int], mapping: dict[str, float] | None = None, pair: int | str = 0,
                   mode: Literal["fast", "slow"] = "fast", order: Order | None = None) -> dict[str, Any]:
        return {}

    def arrays(self, m: Matrix, v: Annotated[np.ndarray, DType("uint8")] | None = None,
               df: pd.DataFrame | None = None,
               cols: Annotated[pd.DataFrame, DataframeSchema(orient="columns")] | None = None) -> np.ndarray:
        return m

    def files(self, image: PIL.Image.Image, doc: Path, pages: list[Path] | None = None, k: int = 1,
              meta: dict[str, Any] | None = None) -> Path:
        return doc

    def raw_text(self, body: str, /) -> str:
        return body

    def raw_file(self, upload: Annotated[Path, ContentType("text/csv")], /) -> Annotated[Path, ContentType("text/csv")]:
        return upload

    def raw_model(self, item: Item = Item(name="default"), /) -> Item:
        return item

    def with_ctx(self, text: str, ctx: bentolite.Context) -> str:  # type: ignore[name-defined]
        return text

    def extras(self, text: str, **kwargs: Any) -> str:
        return text

    def untyped(self, a, b=2):  # noqa: ANN001, ANN201
        return a

    def image_out(self) -> PIL.Image.Image: ...

    def jpeg_out(self) -> Annotated[PIL.Image.Image, ContentType("image/jpeg")]: ...

    def bytes_out(self) -> bytes: ...

    def frame_out(self) -> pd.DataFrame: ...

    def model_out(self) -> Order: ...

    async def stream_text(self, n: int) -> AsyncGenerator[str, None]:
        for i in range(n):
            yield f"chunk {i} "

    def stream_json(self, n: int) -> Generator[dict[str, int], None, None]:
        for i in range(n):
            yield {"i": i}

    def stream_plain(self) -> Annotated[AsyncGenerator[str, None], ContentType("text/plain")]: ...


def json_msg(obj: Any) -> Any:
    return msg(json.dumps(obj), "application/json")


def png_bytes(size: tuple[int, int] = (3, 2), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", size, (10, 20, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def form(*parts: tuple[str, dict[str, str], bytes]) -> Any:
    body, content_type = build_form_data(parts)
    return msg(body, content_type)


# --- input: JSON object of named parameters -----------------------------------------------------
def test_named_parameters_defaults_and_extra_keys():
    typed = TypedInput(Svc.scalars)
    kwargs = typed.decode(json_msg({"text": "ab", "ratio": 2, "flag": True, "unknown": [1]}))
    assert kwargs == {"text": "ab", "n": 3, "ratio": 2.0, "flag": True, "nothing": None}
    assert Svc().scalars(**kwargs) == "ababab"
    assert typed.input_type() == {"text": str, "n": int, "ratio": float, "flag": bool, "nothing": type(None)}
    assert typed.decode(msg(b'{"text": "x"}')) == {"text": "x", "n": 3, "ratio": 0.5, "flag": False, "nothing": None}
    assert set(typed.model.model_fields) == {"text", "n", "ratio", "flag", "nothing"}


def test_containers_unions_literals_and_models():
    typed = TypedInput(Svc.containers)
    kwargs = typed.decode(json_msg({"xs": [1, 2], "mapping": {"a": 1}, "pair": "p", "mode": "slow",
                                    "order": {"items": [{"name": "a", "tags": ["t"]}]}}))
    assert kwargs["xs"] == [1, 2] and kwargs["mapping"] == {"a": 1.0} and kwargs["pair"] == "p"
    assert kwargs["mode"] == "slow"
    assert kwargs["order"] == Order(items=[Item(name="a", tags=["t"])])


def test_ndarray_and_dataframe_parameters():
    typed = TypedInput(Svc.arrays)
    kwargs = typed.decode(json_msg({"m": [1, 2, 3, 4], "v": [1, 255], "df": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
                                    "cols": {"a": [1, 2]}}))
    assert kwargs["m"].dtype == np.float32 and kwargs["m"].shape == (2, 2)  # reshaped, as BentoML
    assert kwargs["v"].dtype == np.uint8
    assert list(kwargs["df"].columns) == ["a", "b"] and kwargs["df"]["a"].tolist() == [1, 2]
    assert kwargs["cols"]["a"].tolist() == [1, 2]
    assert typed.input_type()["m"] == Matrix  # as written; the model holds the validators


def test_context_and_var_keyword_parameters():
    typed = TypedInput(Svc.with_ctx)
    assert typed.ctx_param == "ctx" and set(typed.model.model_fields) == {"text"}
    extras = TypedInput(Svc.extras)
    assert extras.decode(json_msg({"text": "a", "max_length": 5})) == {"text": "a", "max_length": 5}
    untyped = TypedInput(Svc.untyped)
    assert untyped.decode(json_msg({"a": [1]})) == {"a": [1], "b": 2}


def test_unsupported_signatures_fail_at_definition():
    def star_args(self, *xs: int) -> None: ...

    def two_with_raw(self, a: str, /, b: int) -> None: ...

    def unresolvable(self, a: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    def opaque(self, a: Opaque) -> None: ...

    for func in (star_args, two_with_raw, opaque):
        with pytest.raises(InvalidArgument, match=func.__name__):
            TypedInput(func)
    with pytest.raises(TypeError, match="NoSuchType"):
        TypedInput(unresolvable)


# --- input errors: 400 naming the field ---------------------------------------------------------
@pytest.mark.parametrize(
    "func, body, field, words",
    [
        (Svc.scalars, {}, "body.text", "Field required"),
        (Svc.scalars, {"text": "a", "n": "many"}, "body.n", "valid integer"),
        (Svc.containers, {"xs": [1, "x"]}, "body.xs[1]", "valid integer"),
        (Svc.containers, {"xs": [], "mode": "medium"}, "body.mode", "'fast' or 'slow'"),
        (Svc.containers, {"xs": [], "pair": [1]}, "body.pair", "valid"),
        (Svc.containers, {"xs": [], "order": {"items": [{"name": "a"}, {"tags": []}]}}, "body.order.items[1].name",
         "Field required"),
        (Svc.containers, {"xs": [], "mapping": {"k": "v"}}, "body.mapping.k", "valid number"),
        (Svc.arrays, {"m": [[1, 2, 3]]}, "body.m", "expected shape (2, 2), got (1, 3)"),
        (Svc.arrays, {"m": [["a", "b"], ["c", "d"]]}, "body.m", "float32"),
        (Svc.arrays, {"m": [[1, 2], [3]]}, "body.m", "cannot convert"),
        (Svc.arrays, {"m": [1, 2, 3, 4], "v": [256]}, "body.v", "uint8"),
        (Svc.arrays, {"m": [1, 2, 3, 4], "df": 3}, "body.df", "list of records"),
        (Svc.files, {"image": "x.png", "doc": "d"}, "body.image", "multipart/form-data"),
    ],
)
def test_bad_input_names_the_field(func, body, field, words):
    error = bad_input(TypedInput(func), json_msg(body))
    assert error.field == field
    assert words in error.message and error.message.startswith(field)
    assert "Value error" not in error.message and "https://" not in error.message


class Tensors:
    def infer(self, x: Annotated[np.ndarray, Shape((-1, 3, 40, 40)), DType("float32")],
              name: str = "", tags: list[str] | None = None, scale: float = 1.0) -> str:
        return name


def _tensor_body(tensor: Any, **extra: Any) -> bytes:
    from bentolite.io._fastjson import FAST_JSON_BYTES

    body = json.dumps({"name": "a [b]" if extra.pop("bracket", False) else "ab",
                       "x": tensor, "tags": ["p", "q"], **extra}).encode()
    return body + b" " * max(0, FAST_JSON_BYTES - len(body))


def test_large_float_tensor_fields_are_read_by_simdjson_as_the_standard_path_reads_them(monkeypatch):
    from bentolite.io import _fastjson, typed as typed_io

    tensor = np.random.default_rng(1).standard_normal((2, 3, 40, 40)).astype(np.float32)
    body = _tensor_body(tensor.tolist(), scale=0.5)
    found = _fastjson.object_with_float_arrays(body, {"x"})
    assert found is not None and found["x"].shape == (2, 3, 40, 40) and found["tags"] == ["p", "q"]
    typed = TypedInput(Tensors.infer)
    fast = typed.decode(msg(body, "application/json"))
    monkeypatch.setattr(typed_io, "FAST_JSON_BYTES", 1 << 40)
    standard = typed.decode(msg(body, "application/json"))
    assert dict(fast, x=None) == dict(standard, x=None) == {"x": None, "name": "ab",
                                                            "tags": ["p", "q"], "scale": 0.5}
    assert fast["x"].dtype == np.float32 and fast["x"].flags.writeable
    np.testing.assert_array_equal(fast["x"], standard["x"])
    np.testing.assert_array_equal(fast["x"], tensor)


@pytest.mark.parametrize("tensor, extra, field, words", [
    ([[[[1.0] * 40] * 40] * 3, [[[1.0] * 39] * 40] * 3], {}, "body.x", "cannot convert"),
    ([[[[1.0] * 40] * 40] * 3], {"scale": "big"}, "body.scale", "valid number"),
    ([[[[1.0] * 40] * 40] * 2], {}, "body.x", "expected shape"),
    ([[[[1e300] * 40] * 40] * 3], {}, "body.x", "float32"),
])
def test_large_tensor_bodies_get_the_standard_400(tensor, extra, field, words):
    error = bad_input(TypedInput(Tensors.infer), msg(_tensor_body(tensor, **extra), "application/json"))
    assert error.field == field and words in error.message, error.message


def test_large_tensor_bodies_the_fast_path_leaves_to_the_standard_one():
    from bentolite.io._fastjson import object_with_float_arrays

    tensor = [[[[1.5] * 40] * 40] * 3]
    typed = TypedInput(Tensors.infer)
    for body in (_tensor_body(tensor, bracket=True),  # a "[" in a string: not counted
                 _tensor_body(tensor).replace(b'{"name"', b'{"x": [1], "name"', 1)):  # "x" twice
        assert object_with_float_arrays(body, {"x"}) is None
        kwargs = typed.decode(msg(body, "application/json"))
        assert kwargs["x"].shape == (1, 3, 40, 40)  # the last "x" wins, as in the standard decoder


@pytest.mark.parametrize("body, words", [(b"{nope", "Invalid JSON"), (b"[1, 2]", "JSON object"),
                                         (b'"text"', "JSON object"), (b"\xff\xfe\x00", "JSON"),
                                         (b'{"text": NaN}', "NaN")])
def test_body_that_is_not_a_json_object(body, words):
    error = bad_input(TypedInput(Svc.scalars), msg(body, "application/json"))
    assert error.field == "body" and words in error.message


def test_pickle_is_refused_and_urlencoded_forms_work():
    typed = TypedInput(Svc.scalars)
    assert "between services" in bad_input(typed, msg(b"\x80\x05", "application/vnd.bentoml+pickle")).message
    kwargs = typed.decode(msg(b"text=hi&n=2&flag=true", "application/x-www-form-urlencoded"))
    assert (kwargs["text"], kwargs["n"], kwargs["flag"]) == ("hi", 2, True)


# --- multipart: files and images -----------------------------------------------------------------
def test_multipart_image_file_and_json_fields(tmp_path):
    typed = TypedInput(Svc.files)
    assert typed.multipart_fields == ("image", "doc", "pages") and typed._mime_type == "multipart/form-data"
    message = form(
        ("image", {"Content-Type": "image/png", "Content-Disposition": 'form-data; filename="a.png"'}, png_bytes()),
        ("doc", {"Content-Type": "text/plain", "Content-Disposition": 'form-data; filename="../../notes.txt"'},
         b"hello"),
        ("pages", {"Content-Disposition": 'form-data; filename="p1.txt"'}, b"one"),
        ("pages", {"Content-Disposition": 'form-data; filename="p2.txt"'}, b"two"),
        ("k", {}, b"7"),
        ("meta", {}, b'{"a": [1]}'),
        ("ignored", {}, b"x"),
    )
    kwargs = typed.decode(message)
    assert isinstance(kwargs["image"], PIL.Image.Image) and kwargs["image"].size == (3, 2)
    doc = kwargs["doc"]
    assert doc.read_bytes() == b"hello" and doc.name.endswith("-notes.txt")
    upload_dir = doc.parent
    assert [p.read_bytes() for p in kwargs["pages"]] == [b"one", b"two"]
    assert all(p.parent == upload_dir for p in kwargs["pages"])
    assert upload_dir.name.startswith("bentolite-upload-")
    assert (kwargs["k"], kwargs["meta"]) == (7, {"a": [1]})
    kwargs.cleanup()
    assert not upload_dir.exists()


def test_uploads_are_removed_when_validation_fails_or_kwargs_are_dropped():
    typed = TypedInput(Svc.files)
    parts = [("doc", {"Content-Disposition": 'form-data; filename="d.txt"'}, b"data")]
    error = bad_input(typed, form(("image", {"Content-Type": "image/png"}, b"not a png"), *parts))
    assert error.field == "body.image" and "not a readable image" in error.message
    error = bad_input(typed, form(("image", {"Content-Type": "image/png"}, png_bytes()), *parts, ("k", {}, b"x")))
    assert error.field == "body.k"
    assert "Field required" in bad_input(typed, form(*parts)).message
    kwargs = typed.decode(form(("image", {"Content-Type": "image/png"}, png_bytes()), *parts))
    upload_dir = kwargs["doc"].parent
    assert upload_dir.exists()
    del kwargs  # the safety net when a server forgets cleanup()
    assert not upload_dir.exists()


def test_broken_multipart_is_a_400():
    error = bad_input(TypedInput(Svc.files), msg(b"--x\r\nno end", "multipart/form-data; boundary=x"))
    assert error.field == "body"


# --- raw body: a positional-only parameter --------------------------------------------------------
def test_raw_body_parameters(tmp_path):
    assert TypedInput(Svc.raw_text).decode(msg("héllo", "text/plain")) == {"body": "héllo"}
    assert TypedInput(Svc.raw_text)._mime_type == "text/plain"
    raw_file = TypedInput(Svc.raw_file)
    assert raw_file._mime_type == "text/csv"
    kwargs = raw_file.decode(msg(b"a,b\n1,2\n", "text/csv", **{"Content-Disposition": 'attachment; filename="t.csv"'}))
    assert kwargs["upload"].read_text() == "a,b\n1,2\n" and kwargs["upload"].name.endswith("-t.csv")
    kwargs.cleanup()
    error = bad_input(raw_file, msg(b"{}", "application/json"))
    assert error.field == "body" and "text/csv" in error.message
    raw_model = TypedInput(Svc.raw_model)
    assert raw_model.decode(msg(b'{"name": "n"}')) == {"item": Item(name="n")}
    assert raw_model.decode(msg(b"")) == {"item": Item(name="default")}
    error = bad_input(raw_model, msg(b'{"tags": "x"}'))
    assert error.field in ("body.name", "body.tags") and error.message.startswith(error.field)


# --- output ----------------------------------------------------------------------------------------
def encode(func: Any, value: Any) -> tuple[str, bytes]:
    out = TypedOutput(func).encode(value)
    return out.headers["Content-Type"], out.body


def test_outputs_by_annotation(tmp_path):
    assert encode(Svc.scalars, "hi") == ("text/plain; charset=utf-8", b"hi")
    assert encode(Svc.bytes_out, b"\x00\x01") == ("application/octet-stream", b"\x00\x01")
    ctype, body = encode(Svc.containers, {"a": np.float32(1.5), "b": np.arange(2), "c": [np.int64(3)]})
    assert ctype == "application/json" and json.loads(body) == {"a": 1.5, "b": [0, 1], "c": [3]}
    assert json.loads(encode(Svc.arrays, np.eye(2, dtype="float32"))[1]) == [[1, 0], [0, 1]]
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert json.loads(encode(Svc.frame_out, frame)[1]) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    order = Order(items=[Item(name="i")])
    assert json.loads(encode(Svc.model_out, order)[1]) == {"items": [{"name": "i", "tags": []}], "note": None}
    ctype, body = encode(Svc.image_out, PIL.Image.new("RGB", (4, 5)))
    assert ctype == "image/png" and PIL.Image.open(io.BytesIO(body)).size == (4, 5)
    assert encode(Svc.model_out, PIL.Image.new("RGB", (1, 1)))[0] == "image/png"  # never JSON
    ctype, body = encode(Svc.jpeg_out, PIL.Image.new("RGBA", (4, 5)))
    assert ctype == "image/jpeg" and PIL.Image.open(io.BytesIO(body)).format == "JPEG"
    path = tmp_path / "report.json"
    path.write_text("{}")
    out = TypedOutput(Svc.files).encode(path)
    assert (out.headers["Content-Type"], out.body) == ("application/json", b"{}")
    assert out.headers["Content-Disposition"] == 'attachment; filename="report.json"'
    csv = tmp_path / "t.bin"
    csv.write_bytes(b"a,b")
    assert encode(Svc.raw_file, csv) == ("text/csv", b"a,b")


def test_unannotated_output_is_inferred_from_the_value(tmp_path):
    assert encode(Svc.untyped, "t")[0] == "text/plain; charset=utf-8"
    assert encode(Svc.untyped, b"b")[0] == "application/octet-stream"
    assert encode(Svc.untyped, {"x": np.arange(2)}) == ("application/json", b'{"x":[0,1]}')
    assert encode(Svc.untyped, PIL.Image.new("L", (1, 1)))[0] == "image/png"
    (tmp_path / "a.png").write_bytes(png_bytes())
    out = TypedOutput(Svc.untyped).encode(tmp_path / "a.png")
    assert out.headers["Content-Type"] == "image/png" and out.headers["Content-Disposition"].startswith("inline")


def test_output_that_breaks_its_annotation_is_a_500_with_a_reason(tmp_path):
    with pytest.raises(InternalServerError, match="declares a str return but returned int"):
        TypedOutput(Svc.scalars).encode(3)
    with pytest.raises(InternalServerError, match="cannot read the returned file"):
        TypedOutput(Svc.files).encode(tmp_path / "missing.txt")
    with pytest.raises(InternalServerError, match="JSON"):
        TypedOutput(Svc.untyped).encode({"x": object()})


async def collect(output: TypedOutput, value: Any) -> bytes:
    assert output.is_streaming(value)
    return b"".join([chunk async for chunk in output.encode_stream(value)])


def test_streams():
    text = TypedOutput(Svc.stream_text)
    assert text.is_stream and text.stream_headers()["Content-Type"] == "text/event-stream; charset=utf-8"
    assert asyncio.run(collect(text, Svc().stream_text(3))) == b"chunk 0 chunk 1 chunk 2 "
    lines = TypedOutput(Svc.stream_json)
    body = asyncio.run(collect(lines, Svc().stream_json(3)))
    assert [json.loads(line) for line in body.splitlines()] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert TypedOutput(Svc.stream_plain).stream_headers() == {"Content-Type": "text/plain; charset=utf-8"}
    assert not text.is_streaming("a string") and not lines.is_streaming([1, 2])


# --- specs, OpenAPI, /schema.json -------------------------------------------------------------------
ALL = [Svc.scalars, Svc.containers, Svc.arrays, Svc.files, Svc.raw_text, Svc.raw_file, Svc.raw_model,
       Svc.with_ctx, Svc.extras, Svc.untyped, Svc.image_out, Svc.jpeg_out, Svc.bytes_out, Svc.frame_out,
       Svc.model_out, Svc.stream_text, Svc.stream_json]


def test_specs_are_refused_clearly():
    spec = TypedInput(Svc.scalars).to_spec()
    assert spec["id"] == "bentolite.io.TypedInput"
    with pytest.raises(InvalidArgument, match="schema.json"):
        from_spec(spec)
    with pytest.raises(InvalidArgument, match="schema.json"):
        TypedOutput.from_spec(TypedOutput(Svc.scalars).to_spec())


def test_openapi_document_is_valid():
    svc = bentolite.Service("typed")
    for func in ALL:
        typed = TypedInput(func)

        def call(**kwargs: Any) -> None: ...

        call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # what the server registers
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in typed.input_type()])
        svc.api(input=typed, output=TypedOutput(func), name=func.__name__)(call)
    document = openapi_spec(svc)
    validate(document)
    assert document["components"]["schemas"]["Item"]["required"] == ["name"]
    body = document["paths"]["/files"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["properties"]["image"] == {"title": "Image", "type": "string", "format": "binary"}
    assert body["encoding"]["k"] == {"contentType": "application/json"}
    arrays = document["paths"]["/arrays"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert arrays["properties"]["m"]["items"] == {"type": "array", "items": {"type": "number"}}
    stream = document["paths"]["/stream_text"]["post"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]


def test_schema_json_routes_have_bentoml_14_shape():
    def route(func: Any, **kw: Any) -> dict[str, Any]:
        return service_schema_route(func.__name__, f"/{func.__name__}", func.__doc__, TypedInput(func),
                                    TypedOutput(func), kw.get("batchable", False))

    files = route(Svc.files)
    assert set(files) == {"name", "route", "batchable", "input", "output", "is_task"}
    props = files["input"]["properties"]
    assert props["image"]["type"] == "file" and props["image"]["format"] == "image"
    assert props["doc"] == {"format": "binary", "title": "Doc", "type": "file"}
    assert props["pages"]["type"] == "array" and props["pages"]["items"]["type"] == "file"
    assert files["input"]["required"] == ["image", "doc"] and files["output"]["type"] == "file"
    arrays = route(Svc.arrays, batchable=True)
    assert arrays["batchable"] is True
    m = arrays["input"]["properties"]["m"]
    assert (m["type"], m["dtype"], m["shape"], m["dim"]) == ("tensor", "float32", [2, 2], 4)
    assert arrays["input"]["properties"]["df"]["type"] == "dataframe"
    assert arrays["output"]["type"] == "tensor"
    nested = route(Svc.containers)["input"]["properties"]["order"]
    assert nested["properties"]["items"]["items"]["properties"]["name"] == {"title": "Name", "type": "string"}
    assert route(Svc.raw_text)["input"] == {"type": "string", "root_input": True}
    stream = route(Svc.stream_text)
    assert stream["output"] == {"type": "string", "is_stream": True, "media_type": "text/event-stream"}
    assert route(Svc.scalars)["output"] == {"type": "string"}
    forced = service_schema_route("s", "/s", None, TypedInput(Svc.scalars), TypedOutput(Svc.scalars), False,
                                  is_stream=True)
    assert forced["output"] == {"type": "string", "is_stream": True, "media_type": "text/event-stream"}
    document = service_schema("typed", "A doc.", [files, stream])
    assert document == {"name": "typed", "type": "service", "routes": [files, stream], "description": "A doc.",
                        "paths": {"/files": {"mounted": False}, "/stream_text": {"mounted": False}}}
    json.dumps(document)


def test_importing_typed_io_stays_light():
    code = ("import sys, bentolite.io.typed, bentolite.validators; "
            "print([m for m in ('numpy', 'pandas', 'PIL', 'pydantic') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- round trips ----------------------------------------------------------------------------------------
class RoundTrip:
    def call(self, text: str, n: int, xs: list[float], tags: dict[str, bool], opt: int | None = None) -> None: ...


@FAST
@given(
    text=st.text(),
    n=st.integers(min_value=-(2**63), max_value=2**63),
    xs=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5),
    tags=st.dictionaries(st.text(max_size=5), st.booleans(), max_size=3),
    opt=st.none() | st.integers(),
)
def test_kwargs_round_trip(text, n, xs, tags, opt):
    typed = TypedInput(RoundTrip.call)
    kwargs = {"text": text, "n": n, "xs": xs, "tags": tags, "opt": opt}
    assert typed.decode(typed.encode(kwargs)) == kwargs


@FAST
@given(st.lists(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=2, max_size=2),
                min_size=2, max_size=2))
def test_ndarray_output_decodes_as_input(rows):
    array = np.array(rows, dtype="float32")
    body = TypedOutput(Svc.arrays).encode(array).body
    decoded = TypedInput(Svc.arrays).decode(msg(b'{"m": ' + body + b"}"))["m"]
    assert decoded.dtype == np.float32 and np.array_equal(decoded, array)


@FAST
@given(st.lists(st.text(), max_size=5))
def test_text_stream_round_trip(items):
    def gen() -> Generator[str, None, None]:
        yield from items

    assert asyncio.run(collect(TypedOutput(gen), gen())) == "".join(items).encode("utf-8")


# --- over real HTTP (aiohttp on 127.0.0.1, blockbuster fails anything that blocks the loop) -----------
def test_typed_api_over_http(tmp_path):
    from test_http import serve

    from bentolite.exceptions import BentoMLException

    def route(func: Any, impl: Callable[..., Any]) -> Any:
        typed_in, typed_out = TypedInput(func), TypedOutput(func)

        async def handle(request: Any) -> Any:
            from aiohttp import web

            try:
                kwargs = await typed_in.from_http_request(request)
                try:
                    loop = asyncio.get_running_loop()  # a sync API runs in a thread
                    result = await loop.run_in_executor(None, lambda: impl(**kwargs))
                    return await typed_out.to_http_response(result)
                finally:
                    await asyncio.get_running_loop().run_in_executor(None, kwargs.cleanup)
            except BentoMLException as exc:
                return web.json_response(exc.to_json(), status=int(exc.error_code))

        return handle

    upload_dirs = []

    def files(image: PIL.Image.Image, doc: Path, **rest: Any) -> Path:
        upload_dirs.append(doc.parent)
        out = doc.with_name("echo-" + doc.name)
        out.write_bytes(doc.read_bytes() + f" {image.size}".encode())
        return out

    routes = {
        "/scalars": route(Svc.scalars, lambda text, n, **_: text * n),
        "/files": route(Svc.files, files),
        "/stream": route(Svc.stream_json, Svc().stream_json),
    }
    body, ctype = build_form_data([
        ("image", {"Content-Type": "image/png", "Content-Disposition": 'form-data; filename="i.png"'}, png_bytes()),
        ("doc", {"Content-Disposition": 'form-data; filename="d.txt"'}, b"doc"),
    ])

    async def calls(session: Any) -> Any:
        results = []
        async with session.post("/scalars", json={"text": "ab", "n": 2, "extra": 1}) as r:
            results.append((r.status, r.headers["Content-Type"], await r.read()))
        async with session.post("/scalars", json={"text": "ab", "n": [2]}) as r:
            results.append((r.status, await r.json()))
        async with session.post("/files", data=body, headers={"Content-Type": ctype}) as r:
            results.append((r.status, r.headers["Content-Disposition"], await r.read()))
        async with session.post("/stream", json={"n": 2}) as r:
            results.append((r.status, r.headers["Content-Type"], await r.read()))
        return results

    text, bad, file, stream = asyncio.run(serve(routes, calls))
    assert text == (200, "text/plain; charset=utf-8", b"abab")
    assert bad[0] == 400 and bad[1]["field"] == "body.n" and bad[1]["type"] == "BadInput"
    assert file[0] == 200 and file[1].endswith('-d.txt"') and file[2] == b"doc (3, 2)"
    assert stream == (200, "text/event-stream; charset=utf-8", b'{"i":0}\n{"i":1}\n')
    assert len(upload_dirs) == 1 and upload_dirs[0].name.startswith("bentolite-upload-")
    assert not upload_dirs[0].exists()
