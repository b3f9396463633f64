"""``Context``: per-request headers and query in, status, headers and cookies out."""
from __future__ import annotations

import contextvars
from typing import Any, Mapping

import attrs
from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy

__all__ = ["Context", "Cookie", "RequestContext", "ResponseContext"]


@attrs.define
class Cookie:
    """One ``Set-Cookie`` the API function asked for."""

    key: str
    value: str
    max_age: int | None = None
    expires: int | None = None
    path: str = "/"
    domain: str | None = None
    secure: bool = False
    httponly: bool = False
    samesite: str = "lax"


@attrs.define
class RequestContext:
    """What the API function may read about the incoming request."""

    headers: CIMultiDictProxy[str] = attrs.field(factory=lambda: CIMultiDictProxy(CIMultiDict()))
    query_params: MultiDictProxy[str] = attrs.field(
        factory=lambda: MultiDictProxy(CIMultiDict())
    )

    @property
    def metadata(self) -> CIMultiDictProxy[str]:
        return self.headers


@attrs.define
class ResponseContext:
    """What the API function may set on its response."""

    status_code: int = 200
    headers: CIMultiDict[str] = attrs.field(factory=CIMultiDict)
    cookies: list[Cookie] = attrs.field(factory=list)

    @property
    def metadata(self) -> CIMultiDict[str]:
        return self.headers

    def set_cookie(
        self,
        key: str,
        value: str,
        max_age: int | None = None,
        expires: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str = "lax",
    ) -> None:
        """Add a cookie to the response."""
        self.cookies.append(
            Cookie(key, value, max_age, expires, path, domain, secure, httponly, samesite)
        )


_request_var: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("bentolite_request")
_response_var: contextvars.ContextVar[ResponseContext] = contextvars.ContextVar(
    "bentolite_response"
)


#: the id of the request being served (the X-BentoML-Request-ID header), set by the server
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bentolite_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code serves, or None outside a request."""
    return request_id_var.get()


class Context:
    """Service context: ``request``/``response`` of the current request and process-wide ``state``.

    One Context lives on each Service; request and response resolve through context
    variables, so concurrent requests each see their own.
    """

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    @property
    def request(self) -> RequestContext:
        try:
            return _request_var.get()
        except LookupError:
            empty = RequestContext()
            _request_var.set(empty)
            return empty

    @property
    def response(self) -> ResponseContext:
        try:
            return _response_var.get()
        except LookupError:
            fresh = ResponseContext()
            _response_var.set(fresh)
            return fresh

    def begin_request(
        self, headers: Mapping[str, str], query_params: MultiDictProxy[str]
    ) -> ResponseContext:
        """Set this task's request context and a fresh response context; return the latter."""
        proxy = headers if isinstance(headers, CIMultiDictProxy) else CIMultiDictProxy(
            CIMultiDict(headers)
        )
        _request_var.set(RequestContext(proxy, query_params))
        response = ResponseContext()
        _response_var.set(response)
        return response
