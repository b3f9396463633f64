"""Annotations for typed (BentoML 1.2+) APIs, under ``bentoml.validators``' names.

``Annotated[np.ndarray, Shape((2, 2)), DType("float32")]``, ``Annotated[Path,
ContentType("image/png")]`` and ``Annotated[pd.DataFrame, DataframeSchema(orient="columns")]``
in an ``@api`` signature tell the typed IO layer (``bentolite.io.typed``) how to parse and
render a value. ``TensorSchema``, ``DataframeSchema``, ``FileSchema`` and ``PILImageEncoder``
are pydantic validators; numpy, pandas, PIL and pydantic are imported only when they run.

The JSON schemas they give follow BentoML 1.4: in validation mode the ``/schema.json`` kinds
(``"type": "tensor" | "dataframe" | "file"``) that BentoML's client reads; in serialization
mode plain JSON schema (nested arrays, ``string``/``binary``) for OpenAPI.
"""
from __future__ import annotations

import fnmatch
import io
import os
import tempfile
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Callable

import attrs

from .io._formdata import FormPart

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import GetJsonSchemaHandler
    from pydantic_core import core_schema

__all__ = [
    "ContentType",
    "DataframeSchema",
    "DType",
    "FileSchema",
    "PILImageEncoder",
    "Shape",
    "TensorSchema",
]


def _tuple_or_none(value: Any) -> tuple[Any, ...] | None:
    return tuple(value) if value is not None else None


@attrs.frozen
class ContentType:
    """The media type of a file/image parameter, a raw-body parameter or a return value."""

    content_type: str


@attrs.frozen
class Shape:
    """The shape an ndarray parameter must have (``-1``: any size on that axis)."""

    dimensions: tuple[int, ...] = attrs.field(converter=tuple)


@attrs.frozen
class DType:
    """The dtype an ndarray parameter is converted to (``"float32"``)."""

    dtype: str


def _validator_schema(validate: Callable[..., Any], serialize: Callable[..., Any]) -> core_schema.CoreSchema:
    from pydantic_core import core_schema

    return core_schema.with_info_after_validator_function(
        validate,
        core_schema.any_schema(),
        serialization=core_schema.plain_serializer_function_ser_schema(serialize, info_arg=True),
    )


@attrs.frozen
class TensorSchema:
    """Validator of ``numpy.ndarray`` values: JSON nested lists in, nested lists out."""

    format: str = "numpy-array"
    dtype: str | None = None
    shape: tuple[int, ...] | None = attrs.field(default=None, converter=_tuple_or_none)

    @property
    def dim(self) -> int | None:
        if self.shape is None or any(d < 0 for d in self.shape):
            return None
        size = 1
        for d in self.shape:
            size *= d
        return size

    def validate(self, obj: Any, _info: Any = None) -> Any:
        import numpy as np

        if self.format != "numpy-array":
            raise ValueError(f"tensor format {self.format!r} is not supported (only numpy-array)")
        try:
            with np.errstate(over="raise", invalid="raise"):
                arr = np.asarray(obj, dtype=self.dtype)
        except (TypeError, ValueError, OverflowError, FloatingPointError) as exc:
            target = f"a {self.dtype} array" if self.dtype else "an array"
            raise ValueError(f"cannot convert to {target}: {exc}") from None
        if arr.dtype.kind in "OV":
            raise ValueError("expected numbers, strings or booleans in nested lists")
        if not arr.flags.writeable:  # a read-only buffer (a large body read by simdjson)
            arr = arr.copy()
        if self.shape is not None and not _shape_matches(self.shape, arr.shape):
            try:  # as BentoML: a value of the right size is reshaped
                arr = arr.reshape(self.shape)
            except ValueError:
                raise ValueError(f"expected shape {self.shape}, got {arr.shape}") from None
        return arr

    def encode(self, arr: Any, info: Any) -> Any:
        return arr.tolist() if info.mode_is_json() else arr

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return _validator_schema(self.validate, self.encode)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        value = handler(schema)
        if handler.mode == "validation":
            value.update({"type": "tensor", "format": self.format})
            value.update({k: v for k, v in (("dtype", self.dtype), ("shape", self.shape), ("dim", self.dim))
                          if v is not None})
            if "shape" in value:
                value["shape"] = list(value["shape"])
        else:
            child: dict[str, Any] = {"type": "number"}
            for _ in range(1 if self.shape is None else max(len(self.shape), 1)):
                child = {"type": "array", "items": child}
            value.update(child)
        return value


def _shape_matches(expected: tuple[int, ...], received: tuple[int, ...]) -> bool:
    return len(expected) == len(received) and all(e in (-1, r) for e, r in zip(expected, received))


@attrs.frozen
class DataframeSchema:
    """Validator of ``pandas.DataFrame`` values: a list of records or an object of columns."""

    orient: str = attrs.field(default="records", validator=attrs.validators.in_(("records", "columns")))
    columns: tuple[str, ...] | None = attrs.field(default=None, converter=_tuple_or_none)

    def validate(self, obj: Any, _info: Any = None) -> Any:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return obj
        if not isinstance(obj, (list, dict)):
            raise ValueError(f"expected a list of records or an object of columns, got {type(obj).__name__}")
        try:
            return pd.DataFrame(obj, columns=list(self.columns) if self.columns else None)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot make a DataFrame: {exc}") from None

    def encode(self, df: Any, info: Any) -> Any:
        if not info.mode_is_json():
            return df
        return df.to_dict(orient="records" if self.orient == "records" else "list")

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return _validator_schema(self.validate, self.encode)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        value = handler(schema)
        if handler.mode == "validation":
            value.update({"type": "dataframe", "orient": self.orient})
            if self.columns:
                value["columns"] = list(self.columns)
        elif self.orient == "records":
            value.update({"type": "array", "items": {"type": "object"}})
        else:
            value.update({"type": "object", "additionalProperties": {"type": "array", "items": {}}})
        return value


def _upload_of(obj: Any, what: str) -> FormPart:
    if isinstance(obj, FormPart):
        return obj
    if isinstance(obj, (bytes, bytearray)):
        return FormPart(_no_headers(), bytes(obj), None, None)
    if hasattr(obj, "read"):
        name = getattr(obj, "name", None)
        return FormPart(_no_headers(), obj.read(), None, os.path.basename(name) if isinstance(name, str) else None)
    raise ValueError(f"expected {what} uploaded as a multipart/form-data file part, got {type(obj).__name__}")


def _no_headers() -> Any:
    from multidict import CIMultiDict, CIMultiDictProxy

    return CIMultiDictProxy(CIMultiDict())


def _check_content_type(part: FormPart, pattern: str | None) -> None:
    if pattern is not None and part.content_type is not None and not fnmatch.fnmatch(part.content_type, pattern):
        raise ValueError(f"content type {part.content_type} is not {pattern}")


@attrs.frozen
class FileSchema:
    """Validator of ``pathlib.Path`` parameters: an upload, written to a temporary file."""

    format: str = "binary"
    content_type: str | None = None

    def validate(self, obj: Any, info: Any = None) -> Path:
        if isinstance(obj, PurePath):
            return Path(obj)
        part = _upload_of(obj, "a file")
        _check_content_type(part, self.content_type)
        context = getattr(info, "context", None) or {}
        uploads = context.get("uploads")
        if uploads is not None:
            return uploads.write(part)
        suffix = os.path.basename(part.filename) if part.filename else None
        with tempfile.NamedTemporaryFile(suffix=suffix and f"-{suffix}", delete=False) as f:
            f.write(part.body)
        return Path(f.name)

    def encode(self, obj: Path, info: Any) -> Any:
        return obj if not info.mode_is_json() else str(obj)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return _validator_schema(self.validate, self.encode)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        value = handler(schema)
        if handler.mode == "validation":
            fmt = self.content_type.split("/")[0] if self.content_type else self.format
            value.update({"type": "file", "format": fmt})
            if self.content_type is not None:
                value["content_type"] = self.content_type
        else:
            value.update({"type": "string", "format": "binary"})
        return value


@attrs.frozen
class PILImageEncoder:
    """Validator of ``PIL.Image.Image`` parameters: an uploaded image, decoded and loaded."""

    content_type: str | None = None

    def validate(self, obj: Any, _info: Any = None) -> Any:
        import PIL.Image

        if isinstance(obj, PIL.Image.Image):
            return obj
        part = _upload_of(obj, "an image")
        _check_content_type(part, self.content_type)
        PIL.Image.init()
        mime = part.content_type
        formats = [f for f, m in PIL.Image.MIME.items() if m == mime and f in PIL.Image.OPEN] or None
        try:
            image = PIL.Image.open(io.BytesIO(part.body), formats=formats)
            image.load()  # decode now: a truncated file fails here, not in the API function
        except (PIL.Image.UnidentifiedImageError, PIL.Image.DecompressionBombError, OSError, SyntaxError) as exc:
            raise ValueError(f"not a readable image: {exc}") from None
        return image

    def encode(self, image: Any, info: Any) -> Any:
        if not info.mode_is_json():
            return image
        buffer = io.BytesIO()
        image.save(buffer, format=image.format or "PNG")
        return buffer.getvalue()

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return _validator_schema(self.validate, self.encode)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        value = handler(schema)
        if handler.mode == "validation":
            value.update({"type": "file", "format": "image", "pil": True})
            if self.content_type is not None:
                value["content_type"] = self.content_type
        else:
            value.update({"type": "string", "format": "binary"})
        return value
