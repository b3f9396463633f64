"""``JSON``: any JSON value in and out, optionally validated by a pydantic model."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings
from typing import Any, Dict, List, Union

import attrs

from ..exceptions import BadInput, InternalServerError, InvalidArgument
from .base import HTTPMessage, IODescriptor, join_field

__all__ = ["JSON", "DefaultJsonEncoder", "JSONType", "loads_finite", "parse_json"]

JSONType = Union[str, Dict[str, Any], List[Any], int, float, bool, None]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range for a 64-bit float")
    return value


# built once: json.loads with options builds a new decoder per call
_FINITE_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_NO_CONSTANTS_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _text(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    return body.decode(json.detect_encoding(body), "surrogatepass")


_fast_decode: Any = None


def _decode(body: bytes | str, fallback: json.JSONDecoder) -> Any:
    """msgspec's strict decoder (C; refuses NaN, Infinity and overflowing numbers, like
    ``_FINITE_DECODER``, 10x faster); whatever it refuses goes to ``fallback``, which says
    what is wrong in the standard library's words, or takes what only it reads (a BOM,
    UTF-16)."""
    global _fast_decode
    if _fast_decode is None:
        import msgspec

        _fast_decode = msgspec.json.decode
    try:
        return _fast_decode(body)
    except Exception:  # noqa: BLE001 - msgspec.DecodeError and friends: let fallback say
        return fallback.decode(_text(body))


def loads_finite(body: bytes | str) -> Any:
    """``json.loads`` that refuses NaN/Infinity and overflowing numbers (ValueError), as RFC 8259 JSON."""
    return _decode(body, _FINITE_DECODER)


def parse_json(body: bytes, field: str, prefix: str, *, check_floats: bool = True) -> Any:
    """Parse a request body as JSON, or raise BadInput saying what is wrong and where.

    ``check_floats=False`` lets a number too large for a float through as inf (for callers
    that check the parsed values themselves); NaN/Infinity literals are refused always.
    """
    try:
        return _decode(body, _FINITE_DECODER if check_floats else _NO_CONSTANTS_DECODER)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{prefix}: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})",
            field=field,
        ) from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{prefix}: not UTF-8 text ({exc.reason})", field=field) from None
    except ValueError as exc:  # NaN, Infinity, a number too large for a float
        raise BadInput(f"{prefix}: {exc}", field=field) from None


class DefaultJsonEncoder(json.JSONEncoder):
    """Also encodes dataclasses, attrs classes, numpy, pandas and pydantic values."""

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if attrs.has(type(o)):
            return attrs.asdict(o)
        module = type(o).__module__ or ""
        if module.startswith("numpy"):
            if hasattr(o, "tolist"):
                return o.tolist()  # ndarray -> nested lists, numpy scalar -> Python scalar
        if module.startswith("pandas"):
            if hasattr(o, "to_dict"):
                return o.to_dict()
        if hasattr(o, "model_dump"):  # pydantic 2
            return o.model_dump(mode="json")
        if hasattr(o, "dict") and hasattr(o, "__fields__"):  # pydantic 1
            data = o.dict()
            return data["__root__"] if "__root__" in data else data
        return super().default(o)


def _is_pydantic_model(obj: Any) -> bool:
    return isinstance(obj, type) and (hasattr(obj, "model_validate") or hasattr(obj, "parse_obj"))


def _loc_to_field(field: str, loc: tuple[Any, ...]) -> str:
    for key in loc:
        field = join_field(field, key)
    return field


class JSON(IODescriptor[Any]):
    """JSON body; with ``pydantic_model`` the API function gets a validated model instance."""

    descriptor_id = "bentoml.io.JSON"
    _mime_type = "application/json"

    def __init__(
        self,
        *,
        pydantic_model: type | None = None,
        validate_json: bool | None = None,
        json_encoder: type[json.JSONEncoder] = DefaultJsonEncoder,
    ) -> None:
        if validate_json is not None:
            warnings.warn(
                "JSON(validate_json=...) is deprecated and ignored; use pydantic_model",
                DeprecationWarning,
                stacklevel=2,
            )
        if pydantic_model is not None and not _is_pydantic_model(pydantic_model):
            raise InvalidArgument(f"JSON: pydantic_model must be a pydantic model class, got {pydantic_model!r}")
        self._pydantic_model = pydantic_model
        self._json_encoder = json_encoder

    def input_type(self) -> Any:
        return self._pydantic_model or JSONType

    def _spec_args(self) -> dict[str, Any]:
        return {
            "has_pydantic_model": self._pydantic_model is not None,
            "has_json_encoder": self._json_encoder is not None,
        }

    @classmethod
    def from_spec(cls, spec: Any) -> JSON:
        # the model class and encoder cannot travel in a spec: a client gets plain JSON
        if spec.get("id") != cls.descriptor_id:
            raise InvalidArgument(f"spec id {spec.get('id')!r} is not {cls.descriptor_id!r}")
        return cls()

    def _decode(self, msg: HTTPMessage, field: str) -> Any:
        if not msg.body.strip() and self._pydantic_model is None:
            return None  # the encoding of None
        obj = parse_json(msg.body, field, "Invalid JSON input received")
        if self._pydantic_model is None:
            return obj
        return self._validate(obj, field)

    def _validate(self, obj: Any, field: str) -> Any:
        import pydantic

        model = self._pydantic_model
        try:
            if hasattr(model, "model_validate"):
                return model.model_validate(obj)
            return model.parse_obj(obj)  # pragma: no cover  (pydantic 1)
        except pydantic.ValidationError as exc:
            errors = exc.errors()
            first = errors[0]
            path = _loc_to_field(field, tuple(first.get("loc", ())))
            more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
            raise BadInput(f"{path}: {first.get('msg', 'invalid value')}{more}", field=path) from None

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        headers = {"Content-Type": self._mime_type}
        if obj is None:
            return HTTPMessage(b"", headers)
        if hasattr(obj, "model_dump"):
            obj = obj.model_dump(mode="json")
        try:
            text = json.dumps(
                obj, cls=self._json_encoder, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
        except ValueError as exc:  # NaN/Infinity or a circular reference
            raise InternalServerError(f"JSON: cannot render the API output as JSON: {exc}", field=field) from exc
        except TypeError as exc:
            raise InternalServerError(f"JSON: cannot render the API output as JSON: {exc}", field=field) from exc
        return HTTPMessage(text.encode("utf-8"), headers)

    def openapi_schema(self) -> dict[str, Any]:
        if self._pydantic_model is None:
            return {"type": "object"}
        return {"$ref": f"#/components/schemas/{self._pydantic_model.__name__}"}

    def openapi_components(self) -> dict[str, Any] | None:
        model = self._pydantic_model
        if model is None or not hasattr(model, "model_json_schema"):
            return None
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        definitions = schema.pop("$defs", {})
        return {"schemas": {**definitions, model.__name__: schema}}

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> JSON:
        if _is_pydantic_model(sample):
            kwargs.setdefault("pydantic_model", sample)
        elif _is_pydantic_model(type(sample)):
            kwargs.setdefault("pydantic_model", type(sample))
        else:
            try:
                json.dumps(sample, cls=kwargs.get("json_encoder", DefaultJsonEncoder))
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"JSON.from_sample: sample is not JSON-serialisable: {exc}") from None
        descriptor = cls(**kwargs)
        if not isinstance(sample, type):
            descriptor._sample = sample
        return descriptor

    def openapi_example(self) -> Any | None:
        if self._sample is None:
            return None
        return json.loads(json.dumps(self._sample.model_dump(mode="json") if hasattr(self._sample, "model_dump")
                                     else self._sample, cls=self._json_encoder))
