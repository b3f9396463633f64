"""Typed IO: the input and output of a BentoML 1.2+ ``@api`` method, built from its type hints.

Input (``TypedInput``): a pydantic model with one field per parameter. The body is a JSON
object of named parameters (missing ones take their defaults, unknown keys are ignored), or
``multipart/form-data`` when a parameter is a file (``pathlib.Path``, ``PIL.Image.Image``):
file parts arrive as files, other parts are JSON-decoded per field. A positional-only
parameter takes the whole body. ``Path`` uploads are written into a temporary directory per
request, which ``TypedKwargs.cleanup()`` removes (or garbage collection of the kwargs).

Output (``TypedOutput``): ``str`` is text/plain, ``bytes`` octet-stream, an image an image,
a ``Path`` its file, anything else JSON; generators stream (str items as text, others as
one JSON document per line).
"""
from __future__ import annotations

import asyncio
import inspect
import mimetypes
import os
import shutil
import tempfile
import types
import typing
import weakref
from pathlib import Path, PurePath
from typing import Any, AsyncIterator, Callable, Iterator
from urllib.parse import parse_qsl

from ..exceptions import BadInput, InternalServerError, InvalidArgument
from ._fastjson import FAST_JSON_BYTES, object_with_float_arrays
from ._formdata import FormPart, parse_form_data, parse_header_params
from ._typing import (
    file_kind, flatten_schema, is_list_of, iterator_item, metadata_of, patch_annotation, strip_annotated,
    to_openapi30, type_hints,
)
from .base import HTTPMessage, IODescriptor, join_field
from .json import loads_finite, parse_json

__all__ = ["TypedInput", "TypedOutput", "TypedKwargs", "service_schema_route", "service_schema"]

_REF = "#/components/schemas/{model}"
_MULTIPART = "multipart/form-data"
_PICKLE = "application/vnd.bentoml+pickle"
_STREAM_MEDIA_TYPE = "text/event-stream"  # BentoML 1.4's default for streamed output
_SPEC_REFUSAL = ("{name} is built from a Python signature and cannot be rebuilt from a spec; "
                 "BentoML 1.2+ clients read /schema.json instead")


def _content_type_of(tp: Any) -> str | None:
    from ..validators import ContentType

    meta = metadata_of(tp, ContentType)
    return meta.content_type if meta is not None else None


def _is_context_param(name: str, annotation: Any) -> bool:
    if name not in ("ctx", "context"):
        return False
    if annotation is inspect.Parameter.empty:
        return True
    module = getattr(annotation, "__module__", "") or ""
    return getattr(annotation, "__name__", "") == "Context" and module.split(".")[0] in ("bentolite", "bentoml")


class _Uploads:
    """The temporary directory of one request's uploaded files (made on first write)."""

    __slots__ = ("dir",)

    def __init__(self) -> None:
        self.dir: str | None = None

    def write(self, part: FormPart) -> Path:
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="bentolite-upload-")
        name = os.path.basename((part.filename or "").replace("\\", "/"))[-100:].replace("\0", "")
        fd, path = tempfile.mkstemp(suffix=f"-{name}" if name else "", dir=self.dir)
        with os.fdopen(fd, "wb") as f:
            f.write(part.body)
        return Path(path)

    def remove(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


class TypedKwargs(dict):  # type: ignore[type-arg]
    """The keyword arguments of one call; ``cleanup()`` removes the request's uploaded files."""

    _finalizer: Any = None

    def cleanup(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


def _error_path(field: str, loc: tuple[Any, ...], data: Any, missing: bool) -> str:
    """The ``body.x[2].y`` of a pydantic error: loc keys that are in the input (union tags are not)."""
    for i, key in enumerate(loc):
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        elif not (missing and i == len(loc) - 1):
            break
        field = join_field(field, key)
    return field


def _bad_input(exc: Any, field: str, data: Any, root: bool) -> BadInput:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    if root:  # the raw body is the (only) field
        loc, data = loc[1:], data[next(iter(data))] if isinstance(data, dict) and data else None
    path = _error_path(field, loc, data, first.get("type") == "missing")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return BadInput(f"{path}: {message}{more}", field=path)


class TypedInput(IODescriptor[dict[str, Any]]):
    """The input of a new-style ``@api`` method: a pydantic model built from its signature.

    Args:
        func: the plain function defined in the class (its first parameter, ``self``, is skipped).
        input_spec: a pydantic model that replaces the signature-derived one (``@api(input_spec=)``).
    """

    descriptor_id = "bentolite.io.TypedInput"

    def __init__(self, func: Callable[..., Any], *, input_spec: type | None = None) -> None:
        import pydantic

        self.func = func
        self.ctx_param: str | None = None  #: the Context parameter, if any (not part of the model)
        self.root_param: str | None = None  #: the positional-only parameter that takes the whole body
        self.var_keyword: str | None = None  #: a ``**kwargs`` parameter: it gets unknown keys
        self._param_of: dict[str, str] = {}  # model field -> parameter name
        self._hints: dict[str, Any] = {}  # parameter name -> annotation as written
        if input_spec is not None:
            if not (isinstance(input_spec, type) and issubclass(input_spec, pydantic.BaseModel)):
                raise InvalidArgument(f"input_spec must be a pydantic model class, got {input_spec!r}")
            self.model: type[pydantic.BaseModel] = input_spec
            self._param_of = {name: name for name in input_spec.model_fields}
        else:
            self.model = self._build_model(func)
        self._annotations = {self._param_of[n]: f.annotation if not f.metadata else
                             _annotated(f.annotation, f.metadata) for n, f in self.model.model_fields.items()}
        self._wire = {(f.alias or n): n for n, f in self.model.model_fields.items()}  # JSON key -> field
        self.multipart_fields = tuple(k for k, n in self._wire.items() if file_kind(self._annotations[self._param_of[n]]))
        self._list_fields = frozenset(k for k in self.multipart_fields
                                      if is_list_of(self._annotations[self._param_of[self._wire[k]]]))
        self._mime_type = self._media_type()
        self._float_tensor_keys = frozenset(k for k, n in self._wire.items()
                                            if _is_float_tensor(self.model.model_fields[n].metadata))
        self.decode_blocks = bool(self.multipart_fields) or self._mime_type == _MULTIPART or (
            self.root_param is not None and _root_kind(self._annotations[self.root_param]) == "file")

    def _build_model(self, func: Callable[..., Any]) -> Any:
        import pydantic

        hints = type_hints(func)
        fields: dict[str, Any] = {}
        for i, (name, param) in enumerate(inspect.signature(func).parameters.items()):
            if i == 0:  # self
                continue
            annotation = hints.get(name, param.annotation)
            if _is_context_param(name, annotation):
                self.ctx_param = name
                continue
            if param.kind is param.VAR_POSITIONAL:
                raise InvalidArgument(f"{func.__qualname__}: *{name} is not supported in a typed API")
            if annotation is inspect.Parameter.empty:
                annotation = Any
            if param.kind is param.VAR_KEYWORD:
                self.var_keyword, annotation, default = name, dict[str, Any], {}
            else:
                default = ... if param.default is param.empty else param.default
            if param.kind is param.POSITIONAL_ONLY:
                self.root_param = name
            field = name if not (name.startswith("_") or hasattr(pydantic.BaseModel, name)) else f"p{i}_{name}"
            self._param_of[field] = name
            self._hints[name] = annotation
            fields[field] = (patch_annotation(annotation), pydantic.Field(default, alias=name))
        if self.root_param is not None and len(fields) > 1:
            raise InvalidArgument(f"{func.__qualname__}: a positional-only parameter (the raw body) "
                                  "must be the only parameter")
        config = pydantic.ConfigDict(protected_namespaces=(), populate_by_name=False)
        try:
            return pydantic.create_model("Input", __config__=config, __module__=func.__module__, **fields)
        except (TypeError, ValueError, pydantic.PydanticUserError) as exc:  # e.g. a type pydantic cannot check
            raise InvalidArgument(f"cannot build the input model of {func.__qualname__}: {exc}; "
                                  "pass input_spec= a pydantic model") from exc

    # --- descriptor contract ---------------------------------------------------------------------
    def input_type(self) -> dict[str, Any]:
        """Parameter name -> annotation; the server calls ``func(**decoded)`` (see ``root_param``)."""
        return dict(self._hints or self._annotations)

    def _spec_args(self) -> dict[str, Any]:
        return {"func": getattr(self.func, "__qualname__", repr(self.func))}

    @classmethod
    def from_spec(cls, spec: Any) -> IODescriptor[Any]:
        raise InvalidArgument(_SPEC_REFUSAL.format(name=cls.__name__))

    def _media_type(self) -> str:
        if self.root_param is None:
            return _MULTIPART if self.multipart_fields else "application/json"
        annotation = self._annotations[self.root_param]
        kind = _root_kind(annotation)
        explicit = _content_type_of(annotation)
        return explicit or {"text": "text/plain", "bytes": "application/octet-stream",
                            "file": "image/*" if file_kind(annotation) == "image" else "application/octet-stream",
                            }.get(kind, "application/json")

    def _decode(self, msg: HTTPMessage, field: str) -> TypedKwargs:
        content_type = msg.content_type
        if content_type == _PICKLE:
            raise BadInput(f"{_PICKLE} is only accepted between services", field=field)
        if self.root_param is not None:
            return self._validate({self.root_param: self._root_value(msg, field)}, field)
        if content_type == _MULTIPART:
            data = self._form_values(msg, field)
        elif content_type == "application/x-www-form-urlencoded":
            pairs = parse_qsl(msg.body.decode("utf-8", "replace"), keep_blank_values=True)
            data = {k: _json_or_text(v) for k, v in pairs if k in self._wire}
        else:
            body = msg.body or b"{}"
            data = None
            if self._float_tensor_keys and len(body) >= FAST_JSON_BYTES and isinstance(body, bytes):
                data = object_with_float_arrays(body, self._float_tensor_keys)
            if data is None:
                data = parse_json(body, field, "Invalid JSON input received")
            if not isinstance(data, dict):
                raise BadInput(f"expected a JSON object of named parameters ({', '.join(self._wire) or 'none'}), "
                               f"got {type(data).__name__}", field=field)
        return self._validate(data, field)

    def _form_values(self, msg: HTTPMessage, field: str) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for part in parse_form_data(msg.body, msg.headers["content-type"], field):
            if part.name not in self._wire:
                continue
            if part.name in self._list_fields:
                data.setdefault(part.name, []).append(part)
            elif part.name in self.multipart_fields:
                data.setdefault(part.name, part)
            else:
                try:
                    data[part.name] = _json_or_text(part.body.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise BadInput(f"form field is not UTF-8 text ({exc.reason})",
                                   field=join_field(field, part.name)) from None
        return data

    def _root_value(self, msg: HTTPMessage, field: str) -> Any:
        kind = _root_kind(self._annotations[self.root_param or ""])
        if kind == "file":
            if msg.content_type == _MULTIPART:
                parts = parse_form_data(msg.body, msg.headers["content-type"], field)
                files = [p for p in parts if p.filename is not None] or parts
                if not files:
                    raise BadInput("no file in the multipart form", field=field)
                return files[0]
            _, params = parse_header_params(msg.headers.get("content-disposition", ""))
            return FormPart(msg.headers, msg.body, None, params.get("filename"))
        if kind == "bytes":
            return msg.body
        if kind == "text":
            try:
                return msg.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadInput(f"body is not UTF-8 text ({exc.reason})", field=field) from None
        if not msg.body.strip():
            return _MISSING
        return parse_json(msg.body, field, "Invalid JSON input received")

    def _validate(self, data: dict[str, Any], field: str) -> TypedKwargs:
        import pydantic

        if data.get(self.root_param) is _MISSING:
            del data[self.root_param]
        uploads = _Uploads()
        try:
            instance = self.model.model_validate(data, context={"uploads": uploads})
        except pydantic.ValidationError as exc:
            uploads.remove()
            raise _bad_input(exc, field, data, self.root_param is not None) from None
        except BaseException:
            uploads.remove()
            raise
        kwargs = TypedKwargs((self._param_of[name], getattr(instance, name)) for name in self.model.model_fields)
        if self.var_keyword is not None:
            extra = kwargs.pop(self.var_keyword)
            extra.update((k, v) for k, v in data.items() if k not in self._wire)
            kwargs.update((k, v) for k, v in extra.items() if k not in kwargs)
        if uploads.dir is not None:
            kwargs._finalizer = weakref.finalize(kwargs, shutil.rmtree, uploads.dir, True)
        return kwargs

    def encode(self, obj: dict[str, Any], field: str = "input") -> HTTPMessage:
        """Render keyword arguments as a JSON request body (the client side; no files)."""
        if self.root_param is not None:
            return TypedOutput._from_annotation(self._annotations[self.root_param]).encode(obj[self.root_param])
        instance = self.model.model_validate({**obj}) if not isinstance(obj, self.model) else obj
        body = instance.model_dump_json(by_alias=True, exclude=set(self.multipart_fields))
        return HTTPMessage(body.encode("utf-8"), {"Content-Type": "application/json"})

    # --- schemas ---------------------------------------------------------------------------------
    def _json_schema(self, mode: str) -> dict[str, Any]:
        if self.root_param is not None:
            import pydantic

            return pydantic.TypeAdapter(self._annotations[self.root_param]).json_schema(mode=mode, ref_template=_REF)
        return self.model.model_json_schema(mode=mode, ref_template=_REF)

    def openapi_schema(self) -> dict[str, Any]:
        schema = to_openapi30(self._json_schema("serialization"))
        schema.pop("$defs", None)
        return schema

    def openapi_components(self) -> dict[str, Any] | None:
        defs = to_openapi30(self._json_schema("serialization")).get("$defs")
        return {"schemas": defs} if defs else None

    def openapi_request_body(self) -> dict[str, Any]:
        body = super().openapi_request_body()
        if self._mime_type == _MULTIPART:
            body["content"][_MULTIPART]["encoding"] = {
                k: {"contentType": "application/json"} for k in self._wire if k not in self.multipart_fields
            }
        return body

    def schema_json(self) -> dict[str, Any]:
        """The ``input`` entry of a ``/schema.json`` route (BentoML 1.4's flattened form)."""
        schema = self._json_schema("validation")
        defs = {k: v for k, v in schema.pop("$defs", {}).items()}
        if self.root_param is not None:
            schema = flatten_schema(schema, defs)
            schema["root_input"] = True
            return schema
        return flatten_schema(schema, defs) if schema.get("properties") else schema


_MISSING = object()


def _is_float_tensor(metadata: list[Any]) -> bool:
    """Whether a field's validators make it a float ndarray (JSON read by simdjson when big)."""
    from ..validators import TensorSchema

    for m in metadata:
        if isinstance(m, TensorSchema) and m.dtype is not None:
            import numpy as np

            return np.dtype(m.dtype).kind == "f"
    return False


def _annotated(tp: Any, metadata: list[Any]) -> Any:
    from typing import Annotated

    return Annotated[(tp, *metadata)]


def _json_or_text(text: str) -> Any:
    try:
        return loads_finite(text)
    except ValueError:
        return text


def _root_kind(annotation: Any) -> str:
    if file_kind(annotation):
        return "file"
    base = strip_annotated(annotation)
    return {str: "text", bytes: "bytes"}.get(base, "json") if isinstance(base, type) else "json"


def _output_kind(tp: Any) -> str | None:
    """What an annotation says about the response: text, bytes, image, file, json; None: look at the value."""
    base = strip_annotated(tp)
    if base is Any or base is inspect.Signature.empty or base is object:
        return None
    if base is str:
        return "text"
    if base is bytes:
        return "bytes"
    kind = file_kind(base) if inspect.isclass(base) else None
    if kind is not None:
        return "image" if kind == "image" else "file"
    return None if typing.get_origin(base) in (typing.Union, types.UnionType) else "json"


def _value_kind(obj: Any) -> str:
    if isinstance(obj, str):
        return "text"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(obj, PurePath):
        return "file"
    return "image" if type(obj).__module__.startswith("PIL.") and hasattr(obj, "save") else "json"


def _json_fallback(obj: Any) -> Any:
    module = type(obj).__module__ or ""
    if module.startswith("numpy") and hasattr(obj, "tolist"):
        return obj.tolist()
    if module.startswith("pandas") and hasattr(obj, "to_dict"):
        return obj.to_dict(orient="records") if hasattr(obj, "columns") else obj.tolist()
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


class TypedOutput(IODescriptor[Any]):
    """The output of a new-style ``@api`` method, from its return annotation (or ``output_spec``)."""

    descriptor_id = "bentolite.io.TypedOutput"

    def __init__(self, func: Callable[..., Any] | None, *, output_spec: Any = None) -> None:
        import pydantic

        self.func = func
        if output_spec is not None:
            annotation = output_spec
        else:
            annotation = type_hints(func).get("return", Any) if func is not None else Any
        explicit = _content_type_of(annotation)
        stream, item = iterator_item(annotation)
        self.is_stream = stream or bool(func and (inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)))
        self.annotation = patch_annotation(item)
        self._kind = _output_kind(item)
        #: the media type BentoML's schema names: a ContentType annotation, text/event-stream for streams
        self.media_type = explicit or _content_type_of(item) or (_STREAM_MEDIA_TYPE if self.is_stream else None)
        try:
            self._adapter = pydantic.TypeAdapter(self.annotation)
        except (TypeError, ValueError, pydantic.PydanticUserError) as exc:
            raise InvalidArgument(f"cannot build the output model of {getattr(func, '__qualname__', func)}: {exc}; "
                                  "pass output_spec=") from exc
        self._mime_type = self.media_type or {
            "text": "text/plain", "bytes": "application/octet-stream", "image": "image/*", "file": "*/*",
        }.get(self._kind or "", "application/json")

    @classmethod
    def _from_annotation(cls, annotation: Any) -> TypedOutput:
        return cls(None, output_spec=annotation)

    def input_type(self) -> Any:
        return self.annotation

    def _spec_args(self) -> dict[str, Any]:
        return {"func": getattr(self.func, "__qualname__", None)}

    @classmethod
    def from_spec(cls, spec: Any) -> IODescriptor[Any]:
        raise InvalidArgument(_SPEC_REFUSAL.format(name=cls.__name__))

    def _decode(self, msg: HTTPMessage, field: str) -> Any:
        raise InvalidArgument("TypedOutput decodes nothing: BentoML 1.2+ clients read /schema.json", field=field)

    # --- one value ---------------------------------------------------------------------------------
    def encode_blocks(self, obj: Any) -> bool:
        return (self._kind or _value_kind(obj)) in ("image", "file") or _value_kind(obj) == "image"

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        kind = self._kind or _value_kind(obj)
        if kind == "json" and _value_kind(obj) == "image":  # an image cannot be JSON: send it as such
            kind = "image"
        if kind == "text":
            if not isinstance(obj, str):
                raise InternalServerError(f"the API declares a str return but returned {type(obj).__name__}", field=field)
            return HTTPMessage(obj.encode("utf-8"), {"Content-Type": _with_charset(self.media_type or "text/plain")})
        if kind == "bytes":
            if not isinstance(obj, (bytes, bytearray, memoryview)):
                raise InternalServerError(f"the API declares a bytes return but returned {type(obj).__name__}", field=field)
            return HTTPMessage(bytes(obj), {"Content-Type": self.media_type or "application/octet-stream"})
        if kind == "image":
            return self._encode_image(obj, field)
        if kind == "file":
            return self._encode_file(obj, field)
        return HTTPMessage(self._json(obj, field), {"Content-Type": self.media_type or "application/json"})

    def _json(self, obj: Any, field: str) -> bytes:
        try:
            return self._adapter.dump_json(obj, warnings=False, fallback=_json_fallback)
        except Exception as exc:  # pydantic's PydanticSerializationError, TypeError from the fallback
            raise InternalServerError(f"cannot render the API output as JSON: {exc}", field=field) from exc

    def _encode_image(self, image: Any, field: str) -> HTTPMessage:
        import io

        import PIL.Image

        if not isinstance(image, PIL.Image.Image):
            raise InternalServerError(f"the API declares an image return but returned {type(image).__name__}", field=field)
        PIL.Image.init()
        wanted = self.media_type if self.media_type and self.media_type != "image/*" else None
        formats = [f for f, m in PIL.Image.MIME.items() if m == wanted and f in PIL.Image.SAVE]
        fmt = formats[0] if formats else (image.format if image.format in PIL.Image.SAVE else "PNG")
        buffer = io.BytesIO()
        try:
            image.save(buffer, format=fmt)
        except OSError:  # e.g. RGBA to JPEG
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format=fmt)
        return HTTPMessage(buffer.getvalue(), {"Content-Type": PIL.Image.MIME.get(fmt, f"image/{fmt.lower()}")})

    def _encode_file(self, obj: Any, field: str) -> HTTPMessage:
        if not isinstance(obj, (str, PurePath)):
            raise InternalServerError(f"the API declares a Path return but returned {type(obj).__name__}", field=field)
        path = Path(obj)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InternalServerError(f"cannot read the returned file {path}: {exc.strerror}", field=field) from exc
        media_type = self.media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        disposition = "inline" if media_type.startswith("image/") else "attachment"
        name = path.name.replace("\\", "_").replace('"', "_")
        return HTTPMessage(data, {"Content-Type": media_type,
                                  "Content-Disposition": f'{disposition}; filename="{name}"'})

    # --- streams ---------------------------------------------------------------------------------
    def is_streaming(self, obj: Any) -> bool:
        if isinstance(obj, (str, bytes, bytearray, dict, list, tuple)):
            return False
        if inspect.isgenerator(obj) or inspect.isasyncgen(obj) or hasattr(obj, "__aiter__"):
            return True
        return self.is_stream and isinstance(obj, Iterator)

    def stream_headers(self) -> dict[str, str]:
        media_type = self.media_type or _STREAM_MEDIA_TYPE
        headers = {"Content-Type": _with_charset(media_type)}
        if media_type == _STREAM_MEDIA_TYPE:
            headers["Cache-Control"] = "no-cache"
        return headers

    async def encode_stream(self, obj: Any) -> AsyncIterator[bytes]:  # type: ignore[override]
        async for item in _aiter(obj):
            if isinstance(item, str):
                yield item.encode("utf-8")
            elif isinstance(item, (bytes, bytearray, memoryview)):
                yield bytes(item)
            else:
                yield self._json(item, "output") + b"\n"

    # --- schemas -----------------------------------------------------------------------------------
    def _json_schema(self, mode: str) -> dict[str, Any]:
        return self._adapter.json_schema(mode=mode, ref_template=_REF)

    def openapi_schema(self) -> dict[str, Any]:
        if self._kind in ("image", "file", "bytes"):
            return {"type": "string", "format": "binary"}
        schema = to_openapi30(self._json_schema("serialization"))
        schema.pop("$defs", None)
        return schema

    def openapi_components(self) -> dict[str, Any] | None:
        if self._kind in ("image", "file", "bytes"):
            return None
        defs = to_openapi30(self._json_schema("serialization")).get("$defs")
        return {"schemas": defs} if defs else None

    def openapi_responses(self) -> dict[str, Any]:
        responses = super().openapi_responses()
        if self.is_stream:
            responses["content"] = {self.media_type or _STREAM_MEDIA_TYPE: {"schema": {"type": "string"}}}
        return responses

    def schema_json(self) -> dict[str, Any]:
        """The ``output`` entry of a ``/schema.json`` route (BentoML 1.4's form)."""
        schema = self._json_schema("validation")
        defs = schema.pop("$defs", {})
        schema = flatten_schema(schema, defs) if schema.get("properties") else schema
        if self.is_stream:
            schema["is_stream"] = True
        if self.media_type:
            schema["media_type"] = self.media_type
        return schema


def _with_charset(media_type: str) -> str:
    return f"{media_type}; charset=utf-8" if media_type.startswith("text/") and ";" not in media_type else media_type


async def _aiter(obj: Any) -> AsyncIterator[Any]:
    """Items of an async iterable, or of a sync iterator stepped in a thread (it may block)."""
    if hasattr(obj, "__aiter__"):
        async for item in obj:
            yield item
        return
    iterator, done = iter(obj), object()
    while (item := await asyncio.to_thread(next, iterator, done)) is not done:
        yield item


def service_schema_route(
    name: str, route: str, doc: str | None, input: TypedInput, output: TypedOutput,  # noqa: A002
    batchable: bool, *, is_stream: bool | None = None,
) -> dict[str, Any]:
    """One entry of BentoML 1.4's ``/schema.json`` ``routes`` (what its HTTP clients read).

    ``is_stream`` defaults to what the output knows (a generator method or iterator annotation).
    """
    output_schema = output.schema_json()
    if is_stream if is_stream is not None else output.is_stream:
        output_schema["is_stream"] = True
        output_schema.setdefault("media_type", _STREAM_MEDIA_TYPE)
    entry = {"name": name, "route": route, "description": doc, "batchable": batchable,
             "input": input.schema_json(), "output": output_schema, "is_task": False}
    return {k: v for k, v in entry.items() if v is not None}


def service_schema(name: str, doc: str | None, routes: list[dict[str, Any]]) -> dict[str, Any]:
    """BentoML 1.4's ``/schema.json`` document of a service."""
    document = {"name": name, "type": "service", "routes": routes, "description": doc,
                "paths": {route["route"]: {"mounted": False} for route in routes}}
    return {k: v for k, v in document.items() if v is not None}
