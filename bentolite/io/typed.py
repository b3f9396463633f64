"""The IO of new-style APIs: a request model built from the method's type hints.

``POST /<route>`` takes a JSON object of the method's named parameters (missing ones take
their defaults, unknown keys are ignored), or ``multipart/form-data`` when a parameter is a
file (``pathlib.Path``) or an image (``PIL.Image.Image``); a single positional-only parameter
takes the raw body. numpy arrays (``Shape``/``DType`` from ``bentolite.validators``) and
pandas DataFrames are built from JSON. A ``str`` return is ``text/plain``, a generator
streams, files and images are sent as such, anything else is JSON.
"""
from __future__ import annotations

import atexit
import inspect
import mimetypes
import pathlib
import tempfile
import typing
from functools import partial
from typing import Any, AsyncIterator, Callable

from ..exceptions import BadInput, InvalidArgument
from .base import HTTPMessage, IODescriptor, join_field

__all__ = ["TypedInput", "TypedOutput", "service_schema", "service_schema_route"]

_JSON = "application/json"
_MULTIPART = "multipart/form-data"
_TEXT = "text/plain; charset=utf-8"
_FILE_SCHEMA = {"type": "string", "format": "binary"}


# --- types -------------------------------------------------------------------------------

def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, *meta]`` -> ``(T, meta)``; anything else -> ``(annotation, [])``."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        return base, meta
    return annotation, []


def _is(annotation: Any, module: str, name: str) -> bool:
    return (isinstance(annotation, type) and annotation.__name__ == name
            and annotation.__module__.split(".")[0] == module)


def _kind(annotation: Any) -> str | None:
    """``"array"``, ``"frame"``, ``"image"``, ``"path"`` for the special types, else None."""
    base, _ = _unwrap(annotation)
    if _is(base, "numpy", "ndarray"):
        return "array"
    if _is(base, "pandas", "DataFrame"):
        return "frame"
    if isinstance(base, type) and base.__module__ == "PIL.Image" and base.__name__ == "Image":
        return "image"
    if isinstance(base, type) and issubclass(base, pathlib.PurePath):
        return "path"
    return None


def _meta(meta: list[Any], cls: type) -> Any:
    return next((m for m in meta if isinstance(m, cls)), None)


def _to_array(shape: Any, dtype: Any, value: Any) -> Any:
    import numpy as np

    try:
        array = np.asarray(value, dtype=dtype.dtype if dtype is not None else None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an array{' of ' + dtype.dtype if dtype else ''}: {exc}") from None
    if array.dtype == object:
        raise ValueError("not a rectangular array of numbers")
    if shape is not None:
        want = shape.dimensions
        if len(want) != array.ndim or any(w not in (-1, got) for w, got in zip(want, array.shape)):
            raise ValueError(f"expected shape {want}, got {array.shape}")
    return array


def _to_frame(schema: Any, value: Any) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value
    orient = schema.orient if schema is not None else None
    if isinstance(value, list) and orient in (None, "records"):
        frame = pd.DataFrame.from_records(value)
    elif isinstance(value, dict):
        frame = pd.DataFrame(value)
    else:
        raise ValueError("expected a list of records or an object of columns")
    if schema is not None and schema.columns is not None:
        missing = [c for c in schema.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"missing columns {missing}")
    return frame


def _to_image(value: Any) -> Any:
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (bytes, bytearray)):
        import io

        image = Image.open(io.BytesIO(value))
        image.load()
        return image
    raise ValueError("expected an image file")


def _to_path(value: Any) -> pathlib.Path:
    if isinstance(value, pathlib.Path):
        return value
    raise ValueError("expected a file (send the request as multipart/form-data)")


def _model_type(annotation: Any) -> Any:
    """The annotation pydantic validates: special types get their own validator and schema."""
    from pydantic import PlainValidator, WithJsonSchema

    kind = _kind(annotation)
    if kind is None:
        return annotation
    base, meta = _unwrap(annotation)
    if kind == "array":
        shape, dtype = _meta(meta, _validators().Shape), _meta(meta, _validators().DType)
        schema: dict[str, Any] = {"type": "array", "items": {}}
        if dtype is not None:
            schema["x-dtype"] = dtype.dtype
        if shape is not None:
            schema["x-shape"] = list(shape.dimensions)
        return typing.Annotated[Any, PlainValidator(partial(_to_array, shape, dtype)),
                                WithJsonSchema(schema)]
    if kind == "frame":
        frame_schema = _meta(meta, _validators().DataframeSchema)
        return typing.Annotated[Any, PlainValidator(partial(_to_frame, frame_schema)),
                                WithJsonSchema({"type": "array", "items": {"type": "object"}})]
    if kind == "image":
        return typing.Annotated[Any, PlainValidator(_to_image), WithJsonSchema(_FILE_SCHEMA)]
    return typing.Annotated[Any, PlainValidator(_to_path), WithJsonSchema(_FILE_SCHEMA)]


def _validators() -> Any:
    from .. import validators

    return validators


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - a name the module cannot resolve
        raise InvalidArgument(f"API {func.__name__!r}: cannot resolve its type hints: {exc}") \
            from None


def _is_context(param: inspect.Parameter, annotation: Any) -> bool:
    from ..services.context import Context

    return annotation is Context or param.name in ("ctx", "context") and annotation is Any


def _errors_to_bad_input(exc: Any, prefix: str) -> BadInput:
    first = exc.errors(include_url=False)[0]
    field = prefix
    for part in first["loc"]:
        field = join_field(field, part)
    return BadInput(f"{first['msg']}", field=field)


def _schema_with_components(schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    defs = schema.pop("$defs", {})
    return schema, defs


# --- input -------------------------------------------------------------------------------

class TypedInput(IODescriptor[dict[str, Any]]):
    """The input of a new-style ``@api`` method: a pydantic model built from its signature
    (the first parameter, ``self``, and a ``Context`` parameter are not part of it)."""

    descriptor_id = "bentolite.io.TypedInput"
    _mime_type = _JSON

    def __init__(self, func: Callable[..., Any], *, input_spec: Any = None) -> None:
        from pydantic import BaseModel, ConfigDict, create_model

        hints = _hints(func)
        params = list(inspect.signature(func).parameters.values())[1:]
        self._annotations: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(param.name, Any)
            if _is_context(param, annotation):
                continue
            self._annotations[param.name] = annotation
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (_model_type(annotation), default)
        positional = [p.name for p in params if p.kind is p.POSITIONAL_ONLY]
        #: a lone positional-only parameter takes the raw request body (as BentoML)
        self.raw = positional[0] if len(positional) == 1 and len(fields) == 1 else None
        self.files = [name for name, a in self._annotations.items()
                      if _kind(a) in ("image", "path")]
        if input_spec is not None:
            if not (isinstance(input_spec, type) and issubclass(input_spec, BaseModel)):
                raise InvalidArgument(f"input_spec must be a pydantic model class, "
                                      f"got {input_spec!r}")
            self.model = input_spec
            self._annotations = {n: f.annotation for n, f in input_spec.model_fields.items()}
        else:
            self.model = create_model(  # type: ignore[call-overload]
                f"{func.__name__}_input",
                __config__=ConfigDict(arbitrary_types_allowed=True, extra="ignore"), **fields)
        self._fields = list(self.model.model_fields)

    def input_type(self) -> dict[str, Any]:
        return dict(self._annotations)

    def _decode(self, msg: HTTPMessage, field: str) -> dict[str, Any]:
        from pydantic import ValidationError

        try:
            if self.raw is not None:
                value = self._raw_value(msg)
                model = self.model.model_validate({self.raw: value})
            elif msg.content_type == _MULTIPART:
                model = self.model.model_validate(self._form_values(msg, field))
            else:
                model = self.model.model_validate_json(msg.body or b"{}")
        except ValidationError as exc:
            raise _errors_to_bad_input(exc, field) from None
        return {name: getattr(model, name) for name in self._fields}

    def _raw_value(self, msg: HTTPMessage) -> Any:
        kind = _kind(self._annotations[self.raw])  # type: ignore[index]
        annotation = _unwrap(self._annotations[self.raw])[0]  # type: ignore[index]
        if kind == "image" or annotation is bytes:
            return msg.body
        if kind == "path":
            return _temp_file(msg.body, None, msg.content_type)
        if annotation is str:
            return msg.body.decode("utf-8")
        import json

        return json.loads(msg.body)

    def _form_values(self, msg: HTTPMessage, field: str) -> dict[str, Any]:
        import json

        from ._formdata import parse_form_data

        values: dict[str, Any] = {}
        for part in parse_form_data(msg.body, msg.headers["content-type"], field):
            if part.name is None:
                raise BadInput("a form part has no name", field=field)
            kind = _kind(self._annotations.get(part.name))
            if kind == "path":
                values[part.name] = _temp_file(part.body, part.filename,
                                               part.headers.get("content-type"))
            elif kind == "image":
                values[part.name] = bytes(part.body)
            else:
                text = bytes(part.body).decode("utf-8")
                try:
                    values[part.name] = json.loads(text)
                except ValueError:
                    values[part.name] = text  # a plain form field
        return values

    def encode(self, obj: dict[str, Any], field: str = "input") -> HTTPMessage:
        import json

        return HTTPMessage(json.dumps(obj, default=_json_fallback).encode(), {"Content-Type": _JSON})

    # --- OpenAPI ---------------------------------------------------------------------
    def _json_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return _schema_with_components(
            self.model.model_json_schema(ref_template="#/components/schemas/{model}"))

    def openapi_schema(self) -> dict[str, Any]:
        return self._json_schema()[0]

    def openapi_components(self) -> dict[str, Any] | None:
        defs = self._json_schema()[1]
        return {"schemas": defs} if defs else None

    def openapi_request_body(self) -> dict[str, Any]:
        mime = _MULTIPART if self.files else _JSON
        return {"content": {mime: {"schema": self.openapi_schema()}}, "required": True,
                "x-bentoml-io-descriptor": self.to_spec()}

    def to_spec(self) -> dict[str, Any]:
        return {"id": self.descriptor_id, "args": {"fields": self._fields}}

    @classmethod
    def from_spec(cls, spec: Any) -> IODescriptor[Any]:
        raise InvalidArgument("a new-style API is called with its named parameters: use "
                              "bentolite.SyncHTTPClient (it reads /schema.json)")

    def schema_json(self) -> dict[str, Any]:
        """The input's schema for ``/schema.json``: file parameters typed ``file``."""
        schema = dict(self.model.model_json_schema())
        properties = dict(schema.get("properties") or {})
        for name in self.files:
            kind = _kind(self._annotations[name])
            properties[name] = {"type": "file", "format": "image" if kind == "image" else
                                "binary", "title": properties.get(name, {}).get("title", name)}
        schema["properties"] = properties
        return schema


def _temp_file(body: bytes, filename: str | None, content_type: str | None) -> pathlib.Path:
    """An uploaded file as a temporary file (removed when the request's process exits)."""
    suffix = pathlib.Path(filename).suffix if filename else (
        mimetypes.guess_extension(content_type or "") or "")
    handle = tempfile.NamedTemporaryFile(prefix="bentolite-upload-", suffix=suffix, delete=False)
    with handle:
        handle.write(body)
    path = pathlib.Path(handle.name)
    _UPLOADS.append(path)
    return path


_UPLOADS: list[pathlib.Path] = []


def _remove_uploads() -> None:
    for path in _UPLOADS:
        path.unlink(missing_ok=True)


atexit.register(_remove_uploads)


# --- output ------------------------------------------------------------------------------

def _json_fallback(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if tolist is not None:
        return tolist()
    to_dict = getattr(obj, "to_dict", None)  # pandas
    if to_dict is not None:
        try:
            return to_dict(orient="records")
        except TypeError:
            return to_dict()
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _is_stream_annotation(annotation: Any) -> bool:
    import collections.abc as abc

    origin = typing.get_origin(annotation) or annotation
    return origin in (abc.Generator, abc.AsyncGenerator, abc.Iterator, abc.AsyncIterator)


class TypedOutput(IODescriptor[Any]):
    """The output of a new-style ``@api`` method, from its return annotation and value."""

    descriptor_id = "bentolite.io.TypedOutput"
    _mime_type = _JSON

    def __init__(self, func: Callable[..., Any], *, output_spec: Any = None) -> None:
        self.annotation = output_spec if output_spec is not None else \
            _hints(func).get("return", Any)
        self.is_stream = (inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)
                          or _is_stream_annotation(self.annotation))
        base, meta = _unwrap(self.annotation)
        if _is_stream_annotation(base):  # describe (and send) what each item is
            base = (typing.get_args(base) or (Any,))[0]
        content_type = _meta(meta, _validators().ContentType)
        self.content_type = content_type.content_type if content_type is not None else None
        self._base = base
        if base is str:
            self._mime_type = _TEXT

    def input_type(self) -> Any:
        return self.annotation

    def is_streaming(self, obj: Any) -> bool:
        return hasattr(obj, "__aiter__") or (
            hasattr(obj, "__next__") and not isinstance(obj, (str, bytes)))

    def stream_headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type or _TEXT}

    async def encode_stream(self, obj: Any) -> AsyncIterator[bytes]:
        if hasattr(obj, "__aiter__"):
            async for item in obj:
                yield _chunk(item)
        else:
            for item in obj:
                yield _chunk(item)

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        if isinstance(obj, str) and self._base in (str, Any, inspect.Parameter.empty):
            return HTTPMessage(obj.encode("utf-8"), {"Content-Type": self.content_type or _TEXT})
        if isinstance(obj, (bytes, bytearray)):
            return HTTPMessage(bytes(obj), {"Content-Type": self.content_type
                                            or "application/octet-stream"})
        if isinstance(obj, pathlib.PurePath):
            path = pathlib.Path(obj)
            mime = self.content_type or mimetypes.guess_type(path.name)[0] or \
                "application/octet-stream"
            return HTTPMessage(path.read_bytes(), {
                "Content-Type": mime,
                "Content-Disposition": f'attachment; filename="{path.name}"'})
        if _kind(type(obj)) == "image":
            import io

            fmt = (self.content_type or "image/png").split("/")[-1].upper()
            buffer = io.BytesIO()
            obj.save(buffer, format="JPEG" if fmt == "JPG" else fmt)
            return HTTPMessage(buffer.getvalue(), {"Content-Type": f"image/{fmt.lower()}"})
        import pydantic_core

        try:
            body = pydantic_core.to_json(obj, fallback=_json_fallback)
        except (TypeError, pydantic_core.PydanticSerializationError) as exc:
            raise InvalidArgument(f"cannot send the result as JSON: {exc}", field=field) \
                from None
        return HTTPMessage(body, {"Content-Type": _JSON})

    def _decode(self, msg: HTTPMessage, field: str) -> Any:
        if msg.content_type == _JSON:
            import json

            return json.loads(msg.body)
        if (msg.content_type or "").startswith("text/"):
            return msg.body.decode("utf-8")
        return msg.body

    # --- OpenAPI ---------------------------------------------------------------------
    def _json_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._base is str:
            return {"type": "string"}, {}
        if _kind(self._base) in ("image", "path"):
            return dict(_FILE_SCHEMA), {}
        from pydantic import TypeAdapter

        try:
            schema = TypeAdapter(_model_type(self._base)).json_schema(
                ref_template="#/components/schemas/{model}")
        except Exception:  # noqa: BLE001 - an annotation pydantic cannot describe
            schema = {}
        return _schema_with_components(schema)

    def openapi_schema(self) -> dict[str, Any]:
        return self._json_schema()[0]

    def openapi_components(self) -> dict[str, Any] | None:
        defs = self._json_schema()[1]
        return {"schemas": defs} if defs else None

    def _openapi_content(self) -> dict[str, Any]:
        if self.is_stream:
            mime = self.content_type or "text/plain"
        elif self._base is str:
            mime = "text/plain"
        elif _kind(self._base) in ("image", "path"):
            mime = self.content_type or "application/octet-stream"
        else:
            mime = _JSON
        return {mime: {"schema": self.openapi_schema()}}

    def to_spec(self) -> dict[str, Any]:
        return {"id": self.descriptor_id, "args": {}}

    @classmethod
    def from_spec(cls, spec: Any) -> IODescriptor[Any]:
        return TypedInput.from_spec(spec)

    def schema_json(self) -> dict[str, Any]:
        """The output's schema for ``/schema.json`` (``is_stream``, ``media_type``)."""
        schema = dict(self.openapi_schema())
        if self.is_stream:
            schema["is_stream"] = True
        if self.content_type:
            schema["media_type"] = self.content_type
        elif _kind(self._base) in ("image", "path"):
            schema = {"type": "file", "format": "image" if _kind(self._base) == "image"
                      else "binary"}
        return schema


def _chunk(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    import pydantic_core

    return pydantic_core.to_json(item, fallback=_json_fallback) + b"\n"


# --- /schema.json ------------------------------------------------------------------------

def service_schema_route(name: str, route: str, doc: str, input: TypedInput,  # noqa: A002
                         output: TypedOutput, batchable: bool) -> dict[str, Any]:
    """One entry of ``/schema.json``'s ``routes``, as BentoML 1.4's clients read it."""
    entry: dict[str, Any] = {"name": name, "route": route, "batchable": batchable,
                             "input": input.schema_json(), "output": output.schema_json(),
                             "is_task": False}
    if doc:
        entry["description"] = doc
    return entry


def service_schema(name: str, doc: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole ``/schema.json`` document of a service."""
    schema: dict[str, Any] = {"name": name, "type": "service", "routes": routes}
    if doc:
        schema["description"] = doc
    return schema
