"""``Multipart``: a multipart/form-data body whose parts are decoded by their own descriptors."""
from __future__ import annotations

from typing import Any

from ..exceptions import BadInput, InvalidArgument
from ._formdata import build_form_data, parse_form_data
from .base import HTTPMessage, IODescriptor, from_spec

__all__ = ["Multipart"]

_MULTIPART = "multipart/form-data"


class Multipart(IODescriptor[dict[str, Any]]):
    """Named fields, each with its own descriptor; the API function gets them as kwargs."""

    descriptor_id = "bentoml.io.Multipart"
    _mime_type = _MULTIPART

    def __init__(self, **fields: IODescriptor[Any]) -> None:
        if not fields:
            raise InvalidArgument("Multipart needs at least one field, e.g. Multipart(image=Image(), meta=JSON())")
        for name, descriptor in fields.items():
            if isinstance(descriptor, Multipart):
                raise InvalidArgument(f"Multipart field {name!r}: nested Multipart is not supported")
            if not isinstance(descriptor, IODescriptor):
                raise InvalidArgument(
                    f"Multipart field {name!r} must be an IO descriptor, got {type(descriptor).__name__}"
                )
        self._fields = fields

    @property
    def fields(self) -> dict[str, IODescriptor[Any]]:
        """The field descriptors by name."""
        return dict(self._fields)

    def input_type(self) -> Any:
        return {name: descriptor.input_type() for name, descriptor in self._fields.items()}

    def to_spec(self) -> dict[str, Any]:
        return {"id": self.descriptor_id, "args": {n: d.to_spec() for n, d in self._fields.items()}}

    def __repr__(self) -> str:
        return f"Multipart({', '.join(f'{n}={d!r}' for n, d in self._fields.items())})"

    @classmethod
    def from_spec(cls, spec: Any) -> Multipart:
        if spec.get("id") != cls.descriptor_id:
            raise InvalidArgument(f"spec id {spec.get('id')!r} is not {cls.descriptor_id!r}")
        return cls(**{name: from_spec(sub) for name, sub in (spec.get("args") or {}).items()})

    def _decode(self, msg: HTTPMessage, field: str) -> dict[str, Any]:
        if msg.content_type != _MULTIPART:
            raise BadInput(
                f"Multipart: expected Content-Type multipart/form-data, got {msg.content_type or 'none'}",
                field=field,
            )
        parts = parse_form_data(msg.body, msg.headers["content-type"], field)
        by_name: dict[str, Any] = {}
        for part in parts:
            if part.name is None:
                raise BadInput("Multipart: a form part has no name", field=field)
            if part.name not in self._fields:
                raise BadInput(
                    f"Multipart: unexpected field {part.name!r}; expected: {', '.join(self._fields)}",
                    field=part.name,
                )
            if part.name in by_name:
                raise BadInput(f"Multipart: field {part.name!r} sent more than once", field=part.name)
            by_name[part.name] = part
        missing = [name for name in self._fields if name not in by_name]
        if missing:
            raise BadInput(f"Multipart: missing field {missing[0]!r}", field=missing[0])
        return {
            name: descriptor.decode(HTTPMessage(by_name[name].body, by_name[name].headers), field=name)
            for name, descriptor in self._fields.items()
        }

    def encode(self, obj: dict[str, Any], field: str = "output") -> HTTPMessage:
        if not isinstance(obj, dict):
            raise InvalidArgument(f"Multipart: output must be a dict of fields, got {type(obj).__name__}", field=field)
        extra = [name for name in obj if name not in self._fields]
        missing = [name for name in self._fields if name not in obj]
        if extra or missing:
            raise InvalidArgument(
                f"Multipart: output fields must be {', '.join(self._fields)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(map(str, extra))}" if extra else ""),
                field=field,
            )
        rendered = []
        for name, descriptor in self._fields.items():
            msg = descriptor.encode(obj[name], field=f"{field}.{name}")
            rendered.append((name, msg.headers, msg.body))
        body, content_type = build_form_data(rendered)
        return HTTPMessage(body, {"Content-Type": content_type})

    def openapi_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {name: d.openapi_schema() for name, d in self._fields.items()},
            "required": list(self._fields),
        }

    def openapi_components(self) -> dict[str, Any] | None:
        merged: dict[str, Any] = {}
        for descriptor in self._fields.values():
            for section, entries in (descriptor.openapi_components() or {}).items():
                merged.setdefault(section, {}).update(entries)
        return merged or None

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> Multipart:
        raise InvalidArgument("Multipart.from_sample is not supported; build Multipart(**fields) from its fields")
