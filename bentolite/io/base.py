"""The IO descriptor contract: turn HTTP messages into Python objects and back.

A descriptor works on transport-neutral :class:`HTTPMessage` values (``decode``/``encode``),
so the API server, the HTTP client and tests share one parser; ``from_http_request`` and
``to_http_response`` are the v1-named aiohttp adapters around them.
"""
from __future__ import annotations

import abc
import asyncio
import importlib
from typing import TYPE_CHECKING, Any, AsyncIterator, ClassVar, Generic, Mapping, TypeVar

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ..exceptions import BadInput, BentoMLException, InvalidArgument

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

__all__ = ["HTTPMessage", "IODescriptor", "from_spec", "join_field", "descriptor_classes", "OFFLOAD_DECODE_BYTES"]

T = TypeVar("T")

#: bodies at least this large are decoded off the event loop (parsing 1 MiB takes milliseconds)
OFFLOAD_DECODE_BYTES = 1 << 20

#: descriptor_id -> module that defines it (imported on first use by ``from_spec``)
_DESCRIPTOR_MODULES: dict[str, str] = {
    "bentoml.io.Text": ".text",
    "bentoml.io.JSON": ".json",
    "bentoml.io.NumpyNdarray": ".numpy",
    "bentoml.io.PandasDataFrame": ".pandas",
    "bentoml.io.PandasSeries": ".pandas",
    "bentoml.io.Image": ".image",
    "bentoml.io.File": ".file",
    "bentoml.io.Multipart": ".multipart",
    # new-style APIs: built from signatures, so their from_spec refuses and says why
    "bentolite.io.TypedInput": ".typed",
    "bentolite.io.TypedOutput": ".typed",
}
_REGISTRY: dict[str, type[IODescriptor[Any]]] = {}


def _to_headers(headers: Mapping[str, str] | None) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(headers or {}))


@attrs.frozen
class HTTPMessage:
    """A request or response body with its headers (case-insensitive)."""

    body: bytes = attrs.field(converter=bytes)
    headers: CIMultiDictProxy[str] = attrs.field(factory=dict, converter=_to_headers)

    @property
    def content_type(self) -> str | None:
        """The MIME type without parameters, lower-cased; None when there is no header."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower() or None


def join_field(field: str, key: str | int) -> str:
    """Extend an error path: ``body`` + ``x`` -> ``body.x``; ``body`` + ``2`` -> ``body[2]``."""
    if isinstance(key, int):
        return f"{field}[{key}]"
    return f"{field}.{key}" if field else str(key)


def descriptor_classes() -> dict[str, type[IODescriptor[Any]]]:
    """Every descriptor class by its v1 id (imports them all)."""
    for module in set(_DESCRIPTOR_MODULES.values()):
        importlib.import_module(module, __package__)
    return dict(_REGISTRY)


def from_spec(spec: Mapping[str, Any]) -> IODescriptor[Any]:
    """Rebuild a descriptor from ``to_spec()`` output (what ``/docs.json`` carries)."""
    try:
        descriptor_id = spec["id"]
    except (KeyError, TypeError):
        raise InvalidArgument(f"IO descriptor spec has no 'id': {spec!r}") from None
    module = _DESCRIPTOR_MODULES.get(descriptor_id)
    if module is None:
        raise InvalidArgument(
            f"unknown IO descriptor {descriptor_id!r}; known: {', '.join(sorted(_DESCRIPTOR_MODULES))}"
        )
    importlib.import_module(module, __package__)
    return _REGISTRY[descriptor_id].from_spec(spec)


class IODescriptor(abc.ABC, Generic[T]):
    """Parses one kind of request body into ``T`` and renders ``T`` into a response body."""

    descriptor_id: ClassVar[str]
    #: decoding does file I/O or heavy work (uploads, images): run it off the event loop
    decode_blocks: bool = False
    _mime_type: str = "application/octet-stream"
    _sample: Any = None  # set by from_sample; shown as the OpenAPI example

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "descriptor_id" in cls.__dict__:
            _REGISTRY[cls.descriptor_id] = cls

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_spec()["args"].items())
        return f"{type(self).__name__}({args})"

    # --- the transport-neutral core -------------------------------------------------
    @abc.abstractmethod
    def _decode(self, msg: HTTPMessage, field: str) -> T:
        """Parse and validate; may raise anything, ``decode`` turns it into BadInput."""

    @abc.abstractmethod
    def encode(self, obj: T, field: str = "output") -> HTTPMessage:
        """Render ``obj`` as a message body with its content type."""

    @abc.abstractmethod
    def input_type(self) -> Any:
        """The Python type the API function receives."""

    def decode(self, msg: HTTPMessage, field: str = "body") -> T:
        """Parse and validate a message; every failure is a BadInput naming ``field``."""
        try:
            return self._decode(msg, field)
        except BadInput:
            raise
        except BentoMLException as exc:
            raise BadInput(exc.message, field=exc.field or field) from exc
        except RecursionError as exc:
            raise BadInput(f"{type(self).__name__}: input is nested too deeply", field=field) from exc
        except Exception as exc:  # the no-500-for-bad-input guarantee
            raise BadInput(f"{type(self).__name__}: could not parse input: {exc}", field=field) from exc

    def encode_blocks(self, obj: Any) -> bool:
        """Whether encoding ``obj`` does file I/O or heavy work (run it off the event loop)."""
        return False

    # --- streaming (only Text streams today) ---------------------------------------
    def is_streaming(self, obj: Any) -> bool:
        """Whether ``obj`` is a stream to send chunk by chunk (see ``encode_stream``)."""
        return False

    def stream_headers(self) -> dict[str, str]:
        """Headers of a streamed response."""
        return {"Content-Type": self._mime_type}

    async def encode_stream(self, obj: Any) -> AsyncIterator[bytes]:
        """Render a streaming output chunk by chunk."""
        raise InvalidArgument(f"{type(self).__name__} does not stream")
        yield b""  # pragma: no cover  (makes this an async generator)

    # --- aiohttp adapters (v1 names) -------------------------------------------------
    async def from_http_request(self, request: web.Request) -> T:
        """Read the request body and decode it (large bodies in a worker thread)."""
        msg = HTTPMessage(await request.read(), request.headers)
        if self.decode_blocks or len(msg.body) >= OFFLOAD_DECODE_BYTES:
            return await asyncio.get_running_loop().run_in_executor(None, self.decode, msg)
        return self.decode(msg)

    async def to_http_response(self, obj: T, ctx: Any = None) -> web.Response:
        """Encode ``obj`` into a response, applying ``ctx.response`` status/headers/cookies."""
        from aiohttp import web

        if self.is_streaming(obj):
            response = web.Response(body=self.encode_stream(obj), headers=self.stream_headers())
        else:
            if self.encode_blocks(obj):
                msg = await asyncio.get_running_loop().run_in_executor(None, self.encode, obj)
            else:
                msg = self.encode(obj)
            response = web.Response(body=msg.body, headers=msg.headers)
        if ctx is not None:
            _apply_context(response, ctx)
        return response

    # --- OpenAPI ---------------------------------------------------------------------
    def openapi_schema(self) -> dict[str, Any]:
        """JSON schema of the body."""
        return {}

    def openapi_components(self) -> dict[str, Any] | None:
        """Shared schemas this descriptor refers to (``#/components/...``)."""
        return None

    def openapi_example(self) -> Any | None:
        """An example value for the docs, if one is known."""
        return None

    def _openapi_content(self) -> dict[str, Any]:
        media: dict[str, Any] = {"schema": self.openapi_schema()}
        example = self.openapi_example()
        if example is not None:
            media["example"] = example
        return {self._mime_type: media}

    def openapi_request_body(self) -> dict[str, Any]:
        """The OpenAPI ``requestBody`` object."""
        return {
            "content": self._openapi_content(),
            "required": True,
            "x-bentoml-io-descriptor": self.to_spec(),
        }

    def openapi_responses(self) -> dict[str, Any]:
        """The OpenAPI response object for status 200."""
        return {
            "description": "Successful Response",
            "content": self._openapi_content(),
            "x-bentoml-io-descriptor": self.to_spec(),
        }

    # --- specs and samples -----------------------------------------------------------
    def _spec_args(self) -> dict[str, Any]:
        return {}

    def to_spec(self) -> dict[str, Any]:
        """``{"id": "bentoml.io.<Name>", "args": {...}}`` as BentoML 1.x writes it."""
        return {"id": self.descriptor_id, "args": self._spec_args()}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> IODescriptor[Any]:
        """Rebuild from ``to_spec()`` output."""
        if spec.get("id") != cls.descriptor_id:
            raise InvalidArgument(f"spec id {spec.get('id')!r} is not {cls.descriptor_id!r}")
        return cls(**(spec.get("args") or {}))

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> IODescriptor[Any]:
        """Build a descriptor whose settings are inferred from an example value."""
        return cls(**kwargs)


def _apply_context(response: web.Response, ctx: Any) -> None:
    ctx_response = getattr(ctx, "response", None)
    if ctx_response is None:
        return
    status = getattr(ctx_response, "status_code", None)
    if status is not None:
        response.set_status(int(status))
    for key, value in (getattr(ctx_response, "headers", None) or {}).items():
        response.headers[key] = value
    for cookie in getattr(ctx_response, "cookies", None) or ():
        options: dict[str, Any] = {
            name: getattr(cookie, name, None)
            for name in ("max_age", "expires", "domain", "secure", "httponly", "samesite")
        }
        if isinstance(options["expires"], (int, float)):
            # v1 Cookie.expires may be seconds since the epoch; aiohttp wants an HTTP date
            from email.utils import formatdate

            options["expires"] = formatdate(options["expires"], usegmt=True)
        response.set_cookie(
            cookie.key,
            cookie.value,
            path=getattr(cookie, "path", None) or "/",
            **{k: v for k, v in options.items() if v is not None},
        )
