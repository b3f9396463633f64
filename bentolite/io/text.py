"""``Text``: a UTF-8 request body as ``str``; a ``str`` (or async iterator of ``str``) out."""
from __future__ import annotations

from typing import Any, AsyncIterable, AsyncIterator

from ..exceptions import BadInput, InvalidArgument
from .base import HTTPMessage, IODescriptor

__all__ = ["Text"]


class Text(IODescriptor[str]):
    """Plain text; output may also be an async iterator of ``str`` (streamed as it comes)."""

    descriptor_id = "bentoml.io.Text"

    def __init__(self, content_type: str = "text/plain") -> None:
        self._mime_type = content_type

    def input_type(self) -> Any:
        return str

    def _spec_args(self) -> dict[str, Any]:
        return {"content_type": self._mime_type}

    def _content_type_header(self) -> str:
        return f"{self._mime_type}; charset=utf-8"

    def _decode(self, msg: HTTPMessage, field: str) -> str:
        try:
            return msg.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(
                f"Text: request body is not valid UTF-8 (byte {exc.start}: {exc.reason})", field=field
            ) from None

    def encode(self, obj: str, field: str = "output") -> HTTPMessage:
        if not isinstance(obj, str):
            raise InvalidArgument(f"Text: expected a str output, got {type(obj).__name__}", field=field)
        return HTTPMessage(obj.encode("utf-8"), {"Content-Type": self._content_type_header()})

    def is_streaming(self, obj: Any) -> bool:
        return isinstance(obj, AsyncIterable) and not isinstance(obj, (str, bytes))

    def stream_headers(self) -> dict[str, str]:
        headers = {"Content-Type": self._content_type_header()}
        if self._mime_type == "text/event-stream":
            headers["Cache-Control"] = "no-cache"
        return headers

    async def encode_stream(self, obj: AsyncIterable[str]) -> AsyncIterator[bytes]:  # type: ignore[override]
        async for chunk in obj:
            if isinstance(chunk, bytes):
                yield chunk
            elif isinstance(chunk, str):
                yield chunk.encode("utf-8")
            else:
                raise InvalidArgument(f"Text: streamed chunks must be str, got {type(chunk).__name__}")

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def openapi_example(self) -> Any | None:
        return self._sample

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> Text:
        if not isinstance(sample, str):
            raise InvalidArgument(f"Text.from_sample needs a str, got {type(sample).__name__}")
        descriptor = cls(**kwargs)
        descriptor._sample = sample
        return descriptor
