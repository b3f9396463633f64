"""``Service`` and ``InferenceAPI``: what ``bentolite serve`` serves, checked at definition time."""
from __future__ import annotations

import inspect
import logging
import types
from typing import Any, Callable, Iterator, TypeVar

from ..exceptions import BentoMLException, InvalidArgument
from ..tag import normalize_name
from .context import Context

__all__ = ["Service", "InferenceAPI", "RESERVED_NAMES"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: API names and routes taken by the server itself.
RESERVED_NAMES = frozenset(
    {"index", "swagger", "docs", "docs.json", "schema.json", "metrics", "healthz", "livez",
     "readyz", "static_content"}
)
_CTX_PARAM_NAMES = ("ctx", "context")
_NO_ASGI = (
    "Service.{} is not supported by bentolite (its server is aiohttp, not ASGI); mount an "
    "ASGI app that applies the middleware with svc.mount_asgi_app, or use "
    "api_server.http.cors.* for CORS"
)


def _is_io_descriptor(obj: Any) -> bool:
    try:
        from ..io.base import IODescriptor
    except ImportError:  # io not installed in this build: accept the v1 duck type
        return callable(getattr(obj, "from_http_request", None)) and callable(
            getattr(obj, "to_http_response", None)
        )
    return isinstance(obj, IODescriptor)


def _runner_class() -> type | None:
    try:
        from ..runner.runner import Runner
    except ImportError:
        return None
    return Runner


def _is_runner(obj: Any) -> bool:
    cls = _runner_class()
    if cls is not None:
        return isinstance(obj, cls)
    return callable(getattr(obj, "init_local", None)) and isinstance(getattr(obj, "name", None), str)


def _multipart_fields(descriptor: Any) -> list[str] | None:
    """Field names when ``descriptor`` decodes to keyword arguments (Multipart), else None."""
    try:
        input_type = descriptor.input_type()
    except Exception:  # noqa: BLE001 - a descriptor without input_type is single-input
        return None
    return list(input_type) if isinstance(input_type, dict) else None


def _is_ctx_param(param: inspect.Parameter) -> bool:
    annotation = param.annotation
    if annotation is Context or annotation in ("Context", "bentoml.Context", "bentolite.Context"):
        return True
    return param.name in _CTX_PARAM_NAMES


def _referenced_objects(func: Callable[..., Any]) -> Iterator[Any]:
    """Globals and closure values the function's code (and nested code) refers to."""
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return
    glob = getattr(func, "__globals__", {})
    codes = [code]
    while codes:
        current = codes.pop()
        for name in current.co_names:
            if name in glob:
                yield glob[name]
        codes.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    for cell in getattr(func, "__closure__", None) or ():
        try:
            yield cell.cell_contents
        except ValueError:  # empty cell
            continue


class InferenceAPI:
    """One ``@svc.api`` endpoint: a user function between an input and an output descriptor."""

    __slots__ = (
        "name", "route", "doc", "func", "input", "output", "is_async", "ctx_param",
        "multipart_fields",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        input: Any,  # noqa: A002 - v1 name
        output: Any,
        *,
        name: str | None = None,
        doc: str | None = None,
        route: str | None = None,
    ) -> None:
        self.func = func
        self.input = input
        self.output = output
        self.name = name if name is not None else func.__name__
        self.doc = doc if doc is not None else (inspect.getdoc(func) or "")
        self.route = _normalise_route(route if route is not None else self.name)
        self.is_async = inspect.iscoroutinefunction(inspect.unwrap(func))
        self.multipart_fields = _multipart_fields(input)
        self.ctx_param = self._check_signature()

    def _check_signature(self) -> str | None:
        """Validate the parameters against the input descriptor; return the ctx param name."""
        api = f"API {self.name!r}"
        if not self.name.isidentifier():
            raise InvalidArgument(f"{api}: the name must be a Python identifier")
        if self.name in RESERVED_NAMES:
            raise InvalidArgument(f"{api}: {self.name!r} is reserved by the server")
        for which, descriptor in (("input", self.input), ("output", self.output)):
            if not _is_io_descriptor(descriptor):
                raise InvalidArgument(
                    f"{api}: {which} must be an IO descriptor such as bentolite.io.JSON(), "
                    f"got {descriptor!r}"
                )
        params = list(inspect.signature(self.func).parameters.values())
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            raise InvalidArgument(f"{api}: *args/**kwargs are not supported in API functions")
        if self.multipart_fields is not None:
            fields = set(self.multipart_fields)
            ctx = [p for p in params if p.name not in fields and _is_ctx_param(p)]
            unknown = [p.name for p in params if p.name not in fields and p not in ctx]
            if unknown or len(ctx) > 1:
                raise InvalidArgument(
                    f"{api}: parameters {unknown or [p.name for p in ctx]} are not Multipart "
                    f"fields {sorted(fields)} (plus at most one 'ctx' parameter)"
                )
            missing = fields - {p.name for p in params}
            if missing:
                raise InvalidArgument(f"{api}: no parameter for Multipart fields {sorted(missing)}")
            return ctx[0].name if ctx else None
        if not 1 <= len(params) <= 2:
            raise InvalidArgument(
                f"{api}: expected 1 parameter (the input) or 2 (input, ctx), "
                f"got {len(params)}: {[p.name for p in params]}"
            )
        if len(params) == 2:
            annotation = params[1].annotation
            if annotation is not inspect.Parameter.empty and not _is_ctx_param(params[1]):
                raise InvalidArgument(
                    f"{api}: the second parameter is the request context and must be "
                    f"annotated bentolite.Context, got {annotation!r}"
                )
            return params[1].name
        return None

    def __repr__(self) -> str:
        return (
            f"InferenceAPI({type(self.input).__name__} \u2192 {type(self.output).__name__})"
        )


def _normalise_route(route: str) -> str:
    if not isinstance(route, str) or not route.strip("/"):
        raise InvalidArgument(f"route {route!r} must be a non-empty path")
    if "?" in route or "#" in route or route.startswith("//") or route.startswith(":"):
        raise InvalidArgument(f"route {route!r} must not contain '?' or '#' or start with '//' or ':'")
    route = "/" + route.lstrip("/")
    if route.strip("/") in RESERVED_NAMES:
        raise InvalidArgument(f"route {route!r} is reserved by the server")
    return route


class Mount:
    """One mounted app: ``kind`` is ``"asgi"`` or ``"wsgi"``; ``path`` is normalised."""

    __slots__ = ("app", "kind", "path", "name")

    def __init__(self, app: Any, kind: str, path: str = "/", name: str | None = None) -> None:
        if not callable(app):
            raise TypeError(f"mount_{kind}_app: expected an {kind.upper()} app (a callable), "
                            f"got {type(app).__name__}")
        if not path.startswith("/"):
            raise ValueError(f"mount_{kind}_app: path must start with '/', got {path!r}")
        self.app = app
        self.kind = kind
        self.path = path.rstrip("/") or "/"
        self.name = name


class Service:
    """A named set of runners and APIs, served by ``bentolite serve module:svc``."""

    def __init__(
        self, name: str, *, runners: list[Any] | None = None, models: list[Any] | None = None
    ) -> None:
        self.name = normalize_name(name, "service name")
        runners = list(runners or [])
        seen: set[str] = set()
        for runner in runners:
            if not _is_runner(runner):
                raise ValueError(f"Service {self.name!r}: runners= must hold Runner objects, got {runner!r}")
            if runner.name in seen:
                raise ValueError(f"Found duplicate name {runner.name!r} in service runners")
            seen.add(runner.name)
        from ..models import Model

        for model in models or []:
            if not isinstance(model, Model):
                raise ValueError(f"Service {self.name!r}: models= must hold Model objects, got {model!r}")
        self.runners: list[Any] = runners
        self.models: list[Any] = list(models or [])
        self.apis: dict[str, InferenceAPI] = {}
        self.context = Context()
        self.startup_hooks: list[Callable[[Context], Any]] = []
        self.shutdown_hooks: list[Callable[[Context], Any]] = []
        self.deployment_hooks: list[Callable[[], Any]] = []
        #: ASGI/WSGI apps served beside the APIs (``mount_asgi_app`` / ``mount_wsgi_app``)
        self.mount_apps: list[Mount] = []
        self.doc = ""
        self.tag = None
        self.version: str | None = None
        #: set by ``bentolite.load``: how to import this service again, and from where
        self.import_string: str | None = None
        self.working_dir: str | None = None

    def __repr__(self) -> str:
        return f'bentolite.Service(name="{self.name}", runners=[{",".join(r.name for r in self.runners)}])'

    def api(
        self,
        input: Any,  # noqa: A002 - v1 name
        output: Any,
        *,
        name: str | None = None,
        doc: str | None = None,
        route: str | None = None,
    ) -> Callable[[F], F]:
        """Declare ``func`` an HTTP endpoint; returns ``func`` unchanged."""

        def decorator(func: F) -> F:
            api = InferenceAPI(func, input, output, name=name, doc=doc, route=route)
            if api.name in self.apis:
                raise BentoMLException(f"API {api.name!r} is already defined in service {self.name!r}")
            for other in self.apis.values():
                if other.route == api.route:
                    raise BentoMLException(
                        f"API {api.name!r}: route {api.route!r} is already used by API {other.name!r}"
                    )
            self._check_runners_listed(api)
            self.apis[api.name] = api
            return func

        return decorator

    def check_runners_listed(self) -> None:
        """Raise if an API refers to a Runner not in ``runners=`` (run again at serve time,
        when names defined after the API functions exist too)."""
        for api in self.apis.values():
            self._check_runners_listed(api)

    def _check_runners_listed(self, api: InferenceAPI) -> None:
        listed = {id(r) for r in self.runners}
        for obj in _referenced_objects(api.func):
            if _is_runner(obj) and id(obj) not in listed:
                raise BentoMLException(
                    f"API {api.name!r} calls runner {obj.name!r}, which is not in "
                    f"Service({self.name!r}, runners=[...]); add it there so it is started"
                )

    def on_startup(self, func: F) -> F:
        """Run ``func(ctx)`` in each API worker before it serves (sync or async)."""
        self.startup_hooks.append(func)
        return func

    def on_shutdown(self, func: F) -> F:
        """Run ``func(ctx)`` in each API worker when it stops (sync or async)."""
        self.shutdown_hooks.append(func)
        return func

    def on_deployment(self, func: F) -> F:
        """Run ``func()`` once in the serving parent process before workers start."""
        self.deployment_hooks.append(func)
        return func

    def mount_asgi_app(self, app: Any, path: str = "/", name: str | None = None) -> None:
        """Serve an ASGI app (e.g. FastAPI) under ``path``; the service's own routes win."""
        self.mount_apps.append(Mount(app, "asgi", path, name))

    def mount_wsgi_app(self, app: Any, path: str = "/", name: str | None = None) -> None:
        """Serve a WSGI app (e.g. Flask) under ``path``, run in the API thread pool."""
        self.mount_apps.append(Mount(app, "wsgi", path, name))

    def add_asgi_middleware(self, middleware_cls: Any, **options: Any) -> None:
        """Not supported: bentolite serves with aiohttp, not an ASGI stack."""
        raise BentoMLException(_NO_ASGI.format("add_asgi_middleware"))

    @property
    def openapi_spec(self) -> dict[str, Any]:
        from ..server.openapi import openapi_spec

        return openapi_spec(self)
