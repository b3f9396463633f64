"""``Image``: an image upload (raw body or multipart part) as a fully loaded ``PIL.Image``."""
from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any, Iterable

from ..exceptions import BadInput, InvalidArgument
from ._formdata import parse_form_data
from .base import HTTPMessage, IODescriptor

if TYPE_CHECKING:  # pragma: no cover
    import PIL.Image

__all__ = ["Image"]

_MULTIPART = "multipart/form-data"
#: readable, but parsed by running Ghostscript: only accepted when listed explicitly
_UNSAFE_BY_DEFAULT = frozenset({"application/postscript"})


def _pil() -> Any:
    import PIL.Image

    PIL.Image.init()  # registers every format plugin, so MIME/OPEN/SAVE are complete
    return PIL.Image


def _readable_mime_types() -> list[str]:
    pil = _pil()
    return sorted({mime for fmt, mime in pil.MIME.items() if fmt in pil.OPEN})


def _formats_for(mime_types: Iterable[str]) -> list[str]:
    wanted = set(mime_types)
    pil = _pil()
    return [fmt for fmt, mime in pil.MIME.items() if mime in wanted and fmt in pil.OPEN]


class Image(IODescriptor["PIL.Image.Image"]):
    """An image; input is converted to ``pilmode``, output is saved as ``mime_type``."""

    descriptor_id = "bentoml.io.Image"

    def __init__(
        self,
        pilmode: str | None = "RGB",
        mime_type: str = "image/jpeg",
        *,
        allowed_mime_types: Iterable[str] | None = None,
    ) -> None:
        import numpy  # noqa: F401  (encode needs it; import now, not on the event loop)

        pil = _pil()
        if pilmode is not None and pilmode not in pil.MODES:
            raise InvalidArgument(f"Image: invalid pilmode {pilmode!r}; valid: {', '.join(pil.MODES)}")
        mime_type = mime_type.lower()
        save_formats = [fmt for fmt, mime in pil.MIME.items() if mime == mime_type and fmt in pil.SAVE]
        if not save_formats:
            writable = sorted({m for f, m in pil.MIME.items() if f in pil.SAVE})
            raise InvalidArgument(f"Image: cannot write {mime_type!r}; writable: {', '.join(writable)}")
        readable = _readable_mime_types()
        if allowed_mime_types is None:
            allowed = [m for m in readable if m not in _UNSAFE_BY_DEFAULT]
        else:
            allowed = [m.lower() for m in allowed_mime_types]
            unreadable = [m for m in allowed if m not in readable]
            if unreadable or not allowed:
                raise InvalidArgument(
                    f"Image: cannot read {', '.join(unreadable) or 'an empty list'}; readable: {', '.join(readable)}"
                )
        self._pilmode = pilmode
        self._mime_type = mime_type
        self._save_format = save_formats[0]
        self._allowed_mime_types = allowed
        self._explicit_allowed = allowed_mime_types is not None
        self._open_formats = _formats_for(allowed)

    def input_type(self) -> Any:
        return _pil().Image

    def _spec_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"pilmode": self._pilmode, "mime_type": self._mime_type}
        if self._explicit_allowed:
            args["allowed_mime_types"] = list(self._allowed_mime_types)
        return args

    def _allowed_text(self) -> str:
        return ", ".join(self._allowed_mime_types)

    def _decode(self, msg: HTTPMessage, field: str) -> PIL.Image.Image:
        content_type = msg.content_type
        if content_type is None:
            raise BadInput(
                "Image: request has no Content-Type header; send the image with its MIME type "
                f"(allowed: {self._allowed_text()}) or as multipart/form-data",
                field=field,
            )
        if content_type == _MULTIPART:
            parts = parse_form_data(msg.body, msg.headers["content-type"], field)
            files = [p for p in parts if p.filename is not None or p.content_type is not None]
            if not files:
                raise BadInput("Image: no image file found in multipart form", field=field)
            image_parts = [p for p in files if p.content_type in self._allowed_mime_types]
            if not image_parts:
                raise BadInput(
                    f"Image: no multipart image file (allowed mime types are: {self._allowed_text()})",
                    field=field,
                )
            data = image_parts[0].body
        elif content_type in self._allowed_mime_types:
            data = msg.body
        else:
            raise BadInput(
                f"Image: mime type {content_type} is not allowed, allowed mime types are: {self._allowed_text()}",
                field=field,
            )
        return self._open(data, field)

    def _open(self, data: bytes, field: str) -> PIL.Image.Image:
        pil = _pil()
        try:
            image = pil.open(io.BytesIO(data), formats=self._open_formats)
            image.load()  # decode now, so a truncated file fails here and not in user code
            if self._pilmode is not None and image.mode != self._pilmode:
                image = image.convert(self._pilmode)
        except (pil.UnidentifiedImageError, pil.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
            raise BadInput(
                f"Image: failed to parse uploaded image file (allowed mime types are: {self._allowed_text()}): {exc}",
                field=field,
            ) from None
        return image

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        import numpy as np

        pil = _pil()
        if isinstance(obj, np.ndarray):
            try:
                image = pil.fromarray(obj)
            except (TypeError, ValueError) as exc:
                raise BadInput(f"Image: cannot make an image from this ndarray: {exc}", field=field) from None
            if self._pilmode is not None and image.mode != self._pilmode:
                image = image.convert(self._pilmode)
        elif isinstance(obj, pil.Image):
            image = obj
        else:
            raise BadInput(
                f"Image: output must be a PIL image or numpy ndarray, got {type(obj).__name__}", field=field
            )
        buffer = io.BytesIO()
        try:
            image.save(buffer, format=self._save_format)
        except OSError:
            # e.g. an RGBA image to JPEG: fall back to a mode the format can hold
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format=self._save_format)
        headers = {
            "Content-Type": self._mime_type,
            "Content-Disposition": f'attachment; filename="output.{self._save_format.lower()}"',
        }
        return HTTPMessage(buffer.getvalue(), headers)

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "binary"}

    def openapi_request_body(self) -> dict[str, Any]:
        return {
            "content": {mime: {"schema": self.openapi_schema()} for mime in self._allowed_mime_types},
            "required": True,
            "x-bentoml-io-descriptor": self.to_spec(),
        }

    def openapi_responses(self) -> dict[str, Any]:
        return {
            "description": "Successful Response",
            "content": {self._mime_type: {"schema": self.openapi_schema()}},
            "x-bentoml-io-descriptor": self.to_spec(),
        }

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> Image:
        import numpy as np

        pil = _pil()
        if isinstance(sample, (str, os.PathLike)):
            try:
                with pil.open(sample) as opened:
                    fmt = opened.format
            except (OSError, pil.UnidentifiedImageError) as exc:
                raise InvalidArgument(f"Image.from_sample: cannot read {os.fspath(sample)!r}: {exc}") from None
            if fmt in pil.MIME and fmt in pil.SAVE:
                kwargs.setdefault("mime_type", pil.MIME[fmt])
        elif isinstance(sample, np.ndarray):
            pil.fromarray(sample)  # refuse arrays that are not images
        elif isinstance(sample, pil.Image):
            if sample.format in pil.MIME and sample.format in pil.SAVE:
                kwargs.setdefault("mime_type", pil.MIME[sample.format])
        else:
            raise InvalidArgument(
                f"Image.from_sample needs a path, PIL image or ndarray, got {type(sample).__name__}"
            )
        return cls(**kwargs)
