"""Type-hint helpers of the typed IO layer: classify annotations, attach validators, and
turn pydantic's JSON schemas into what OpenAPI 3.0 and BentoML's ``/schema.json`` want."""
from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from pathlib import PurePath
from typing import Annotated, Any, Callable, Union

__all__ = [
    "type_hints",
    "strip_annotated",
    "metadata_of",
    "file_kind",
    "is_list_of",
    "iterator_item",
    "patch_annotation",
    "to_openapi30",
    "flatten_schema",
]

_ITERATORS = {
    typing.Iterator, typing.Generator, typing.Iterable, typing.AsyncIterator, typing.AsyncGenerator,
    typing.AsyncIterable, collections.abc.Iterator, collections.abc.Generator, collections.abc.Iterable,
    collections.abc.AsyncIterator, collections.abc.AsyncGenerator, collections.abc.AsyncIterable,
}
_UNIONS = (Union, types.UnionType)
_LISTS = (list, collections.abc.Sequence, collections.abc.MutableSequence)


def type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of ``func`` (``Annotated`` kept); TypeError names the failure."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # NameError for an undefined name, TypeError for a bad hint
        raise TypeError(f"cannot resolve the type hints of {func.__qualname__}: {exc}") from exc


def strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def metadata_of(tp: Any, cls: type) -> Any | None:
    """The first ``cls`` instance in ``Annotated[...]`` metadata of ``tp``, if any."""
    if typing.get_origin(tp) is Annotated:
        return next((m for m in tp.__metadata__ if isinstance(m, cls)), None)
    return None


def _optional_inner(tp: Any) -> Any:
    if typing.get_origin(tp) in _UNIONS:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_image_class(tp: Any) -> bool:
    if not (inspect.isclass(tp) and tp.__module__.startswith("PIL.")):
        return False
    import PIL.Image

    return issubclass(tp, PIL.Image.Image)


def file_kind(tp: Any) -> str | None:
    """``"path"`` or ``"image"`` when ``tp`` (or ``Optional``/``list`` of it) is a file type."""
    tp = strip_annotated(_optional_inner(strip_annotated(tp)))
    if is_list_of(tp):
        args = typing.get_args(tp)
        tp = strip_annotated(args[0]) if args else Any
    if inspect.isclass(tp) and issubclass(tp, PurePath):
        return "path"
    return "image" if _is_image_class(tp) else None


def is_list_of(tp: Any) -> bool:
    tp = strip_annotated(_optional_inner(strip_annotated(tp)))
    origin = typing.get_origin(tp) or tp
    return inspect.isclass(origin) and origin in _LISTS


def iterator_item(tp: Any) -> tuple[bool, Any]:
    """``(True, item type)`` for ``Generator[str, None, None]`` and friends, else ``(False, tp)``."""
    inner = strip_annotated(tp)
    if typing.get_origin(inner) in _ITERATORS or inner in _ITERATORS:
        args = typing.get_args(inner)
        return True, args[0] if args else Any
    return False, tp


def patch_annotation(tp: Any) -> Any:
    """Attach the validators of ``bentolite.validators`` to ndarray, DataFrame, image and path types."""
    from ..validators import ContentType, DataframeSchema, DType, FileSchema, PILImageEncoder, Shape, TensorSchema

    metadata: list[Any] = []
    if typing.get_origin(tp) is Annotated:
        tp, *metadata = typing.get_args(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    module = getattr(origin or tp, "__module__", "") or ""
    if origin is not None and origin is not typing.Literal and module != "numpy" and args:
        patched = tuple(patch_annotation(a) if not isinstance(a, (list, type(...))) else a for a in args)
        if patched != args:
            tp = Union[patched] if origin in _UNIONS else origin[patched]
    elif module == "numpy" and (origin or tp).__name__ == "ndarray":
        dtype = None
        if len(args) == 2 and typing.get_args(args[1]):
            import numpy as np

            dtype = np.dtype(typing.get_args(args[1])[0]).name
        shape = next((m.dimensions for m in metadata if isinstance(m, Shape)), None)
        dtype = next((m.dtype for m in metadata if isinstance(m, DType)), dtype)
        metadata = [TensorSchema("numpy-array", dtype, shape)] + [m for m in metadata
                                                                 if not isinstance(m, (Shape, DType))]
        tp = origin or tp
    elif module.startswith("pandas") and getattr(tp, "__name__", "") == "DataFrame":
        if not any(isinstance(m, DataframeSchema) for m in metadata):
            metadata.insert(0, DataframeSchema())
    else:
        kind = file_kind(tp) if inspect.isclass(tp) else None
        content_type = next((m.content_type for m in metadata if isinstance(m, ContentType)), None)
        if kind == "path":
            metadata.insert(0, FileSchema(content_type=content_type))
        elif kind == "image":
            metadata.insert(0, PILImageEncoder(content_type))
    return Annotated[(tp, *metadata)] if metadata else tp


# --- JSON schema conversions ------------------------------------------------------------------
_OAS30_KEYS = frozenset(
    "title multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength pattern "
    "maxItems minItems uniqueItems maxProperties minProperties required enum type allOf oneOf anyOf not "
    "items properties additionalProperties description format default nullable discriminator readOnly "
    "writeOnly example externalDocs deprecated $ref".split()
)


def to_openapi30(schema: Any, ref_prefix: str = "#/components/schemas/") -> Any:
    """Rewrite a pydantic (JSON Schema 2020-12) schema into an OpenAPI 3.0 Schema Object."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {k: to_openapi30(v, ref_prefix) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_openapi30(value, ref_prefix)
        elif key in ("anyOf", "oneOf", "allOf"):
            members = [to_openapi30(v, ref_prefix) for v in value if v != {"type": "null"}]
            if len(members) < len(value):
                out["nullable"] = True
            if len(members) == 1 and key != "allOf" and "$ref" not in members[0]:
                out.update({k: v for k, v in members[0].items() if k not in out})
            elif members:
                out[key] = members
        elif key == "$ref":
            out[key] = ref_prefix + value.rsplit("/", 1)[-1]
        elif key == "const":
            out["enum"] = [value]
        elif key == "type" and value == "null":
            out["nullable"], out["enum"] = True, [None]
        elif key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            if len(kinds) < len(value):
                out["nullable"] = True
            if len(kinds) == 1:
                out["type"] = kinds[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "prefixItems":
            items = [to_openapi30(v, ref_prefix) for v in value]
            out["items"] = {"anyOf": items} if items else {}
            out.setdefault("minItems", len(items))
        elif key == "examples" and isinstance(value, list) and value:
            out["example"] = value[0]
        elif key in _OAS30_KEYS:
            out[key] = value
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}
    if "$ref" in out and len(out) > 1:  # siblings of $ref are ignored in 3.0: wrap it
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def flatten_schema(schema: dict[str, Any], defs: dict[str, Any], _depth: int = 0) -> dict[str, Any]:
    """Inline ``$ref``s and keep the first member of ``anyOf``/``allOf``, as BentoML's ``/schema.json``."""
    schema = dict(schema)
    for key in ("allOf", "anyOf"):
        if key in schema:
            schema.update(schema.pop(key)[0])
    if _depth > 16:  # a recursive model: stop inlining
        return schema
    if "$ref" in schema:
        name = schema.pop("$ref").rsplit("/", 1)[-1]
        schema.update(flatten_schema(defs.get(name, {}), defs, _depth + 1))
    elif schema.get("type") == "object" and "properties" in schema:
        schema["properties"] = {k: flatten_schema(v, defs, _depth + 1) for k, v in schema["properties"].items()}
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        schema["items"] = flatten_schema(schema["items"], defs, _depth + 1)
    return schema
