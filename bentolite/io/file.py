"""``File``: an upload (raw body or first multipart file) as a file-like object."""
from __future__ import annotations

import io
import mimetypes
import os
from typing import Any

from ..exceptions import BadInput, InvalidArgument
from ._formdata import parse_form_data, parse_header_params
from .base import HTTPMessage, IODescriptor

__all__ = ["File", "FileLike"]


class FileLike(io.BytesIO):
    """An in-memory uploaded file with the ``name`` it was sent under."""

    def __init__(self, data: bytes = b"", name: str = "<request body>", mime_type: str | None = None) -> None:
        super().__init__(data)
        self.name = name
        self.mime_type = mime_type

    def __repr__(self) -> str:
        return f"FileLike(name={self.name!r}, mime_type={self.mime_type!r})"


class File(IODescriptor[FileLike]):
    """Any file; ``mime_type`` restricts what is accepted and sets the response type."""

    descriptor_id = "bentoml.io.File"

    def __init__(self, kind: str = "binaryio", mime_type: str | None = None) -> None:
        if kind != "binaryio":
            raise InvalidArgument(f"File: kind must be 'binaryio', got {kind!r}")
        self._kind = kind
        self._declared_mime_type = mime_type.lower() if mime_type else None
        self._mime_type = self._declared_mime_type or "application/octet-stream"

    def input_type(self) -> Any:
        return FileLike

    def _spec_args(self) -> dict[str, Any]:
        return {"kind": self._kind, "mime_type": self._declared_mime_type}

    def _decode(self, msg: HTTPMessage, field: str) -> FileLike:
        content_type = msg.content_type
        wanted = self._declared_mime_type
        if content_type == "multipart/form-data":
            parts = parse_form_data(msg.body, msg.headers["content-type"], field)
            files = [p for p in parts if p.filename is not None] or parts
            if wanted is not None:
                files = [p for p in files if p.content_type == wanted]
            if not files:
                expected = f" of type {wanted}" if wanted else ""
                raise BadInput(f"File: no file{expected} found in the multipart form", field=field)
            part = files[0]
            return FileLike(part.body, part.filename or part.name or "<form part>", part.content_type)
        if wanted is not None and content_type != wanted:
            raise BadInput(f"File: expected Content-Type {wanted}, got {content_type or 'none'}", field=field)
        # inside a Multipart field the part's own headers arrive here, filename included
        _, params = parse_header_params(msg.headers.get("content-disposition", ""))
        return FileLike(msg.body, params.get("filename") or "<request body>", content_type)

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        if isinstance(obj, (bytes, bytearray, memoryview)):
            data = bytes(obj)
        elif hasattr(obj, "read"):
            data = obj.read()
            if isinstance(data, str):
                data = data.encode("utf-8")
        else:
            raise BadInput(f"File: output must be bytes or a file-like object, got {type(obj).__name__}", field=field)
        return HTTPMessage(data, {"Content-Type": self._mime_type})

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "binary"}

    def _openapi_content(self) -> dict[str, Any]:
        return {self._declared_mime_type or "*/*": {"schema": self.openapi_schema()}}

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> File:
        if isinstance(sample, (str, os.PathLike)):
            if not os.path.isfile(sample):
                raise InvalidArgument(f"File.from_sample: no such file {os.fspath(sample)!r}")
            guessed, _ = mimetypes.guess_type(os.fspath(sample))
            if guessed:
                kwargs.setdefault("mime_type", guessed)
        elif not isinstance(sample, (bytes, bytearray)) and not hasattr(sample, "read"):
            raise InvalidArgument(f"File.from_sample needs a path, bytes or file, got {type(sample).__name__}")
        return cls(**kwargs)
