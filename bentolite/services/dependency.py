"""``bentolite.depends``: one service calling another through the runner engine.

``self.dep.method(...)`` returns the result for a sync method and an awaitable for an async
one (as the method is defined); ``self.dep.to_async.method(...)`` is always awaitable and
``self.dep.to_sync.method(...)`` always blocks. Generator methods give (async) iterators.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..exceptions import BentoMLException, InvalidArgument
from ..runner.handle import on_event_loop

if TYPE_CHECKING:  # pragma: no cover
    from .definition import APIMethod, ServiceDefinition

__all__ = ["Dependency", "ServiceProxy", "URLProxy", "depends"]

logger = logging.getLogger("bentolite.services")

_AUTO, _ASYNC, _SYNC = "auto", "async", "sync"
#: (service, method) pairs already warned about dropped arguments: warn once per method
_WARNED: set[tuple[str, str]] = set()


class Dependency:
    """A class attribute naming the service (or URL) this service calls."""

    def __init__(self, on: ServiceDefinition[Any] | None = None, *, url: str | None = None,
                 deployment: str | None = None, cluster: str | None = None) -> None:
        from .definition import ServiceDefinition

        if deployment is not None or cluster is not None:
            raise InvalidArgument("depends(deployment=...) needs BentoCloud; use depends(Service) "
                                  "or depends(url='http://host:port')")
        if on is None and url is None:
            raise InvalidArgument("depends() needs a service class or url=")
        if on is not None and not isinstance(on, ServiceDefinition):
            raise InvalidArgument(f"depends() takes a @bentolite.service class, got {on!r}")
        self.on = on
        self.url = url
        self._proxy: Any = None

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if self._proxy is None:
            if self.on is not None:
                self._proxy = ServiceProxy(self.on, getattr(self, "attr", self.on.name))
            else:
                self._proxy = URLProxy(self.url)  # type: ignore[arg-type]
        return self._proxy

    def __repr__(self) -> str:
        return f"depends({self.on.name if self.on is not None else self.url!r})"


def depends(on: ServiceDefinition[Any] | None = None, *, url: str | None = None,
            deployment: str | None = None, cluster: str | None = None) -> Any:
    """Declare a dependency on service ``on`` (or a running server at ``url``)."""
    return Dependency(on, url=url, deployment=deployment, cluster=cluster)


class _MethodProxy:
    __slots__ = ("_target", "_api", "_mode", "_label", "_params", "_open", "_service")

    def __init__(self, target: Any, api: APIMethod[Any], mode: str, label: str,
                 service: str) -> None:
        self._target = target  # the runner method
        self._service = service
        self._api = api
        self._mode = mode
        self._label = label
        params = list(api.signature.parameters.values())[1:]  # without self
        self._open = any(p.kind is p.VAR_KEYWORD for p in params)
        self._params = {p.name for p in params if p.kind is not p.VAR_POSITIONAL}

    def _drop_unknown(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = [k for k in kwargs if k not in self._params]
        if not unknown or self._open:
            return kwargs
        if (self._service, self._api.name) not in _WARNED:  # the calling code is the same each time
            _WARNED.add((self._service, self._api.name))
            logger.warning("%s() takes no argument(s) %s; dropped (as BentoML's server does)",
                           self._label, ", ".join(sorted(unknown)))
        return {k: v for k, v in kwargs.items() if k in self._params}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs = self._drop_unknown(kwargs)
        wants_async = self._mode == _ASYNC or (self._mode == _AUTO and self._api.is_async)
        if self._api.is_stream:
            if not wants_async:
                raise BentoMLException(
                    f"{self._label}() streams: iterate it from async code with `async for "
                    f"... in ...to_async.{self._api.name}(...)` (blocking streams between "
                    "services are not supported)")
            return self._target.async_stream(*args, **kwargs)
        if wants_async:
            return self._target.async_run(*args, **kwargs)
        return self._blocking(self._target.run, *args, **kwargs)

    def _blocking(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        if on_event_loop():
            raise BentoMLException(
                f"{self._label}() is a blocking call made on the event loop, where it would "
                f"stall every request; from async code use "
                f"`await self.{self._label.rsplit('.', 1)[0]}.to_async.{self._api.name}(...)`")
        return call(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self._mode} call to {self._label}>"


class ServiceProxy:
    """``self.dep`` inside a service: one callable per API of the dependency."""

    def __init__(self, definition: ServiceDefinition[Any], attr: str, mode: str = _AUTO) -> None:
        self._definition = definition
        self._attr = attr
        self._mode = mode
        self._methods: dict[str, _MethodProxy] = {}
        self._modes: dict[str, ServiceProxy] = {}

    def _in_mode(self, mode: str) -> ServiceProxy:
        proxy = self._modes.get(mode)
        if proxy is None:
            proxy = self._modes[mode] = ServiceProxy(self._definition, self._attr, mode)
        return proxy

    @property
    def to_async(self) -> ServiceProxy:
        """Every method awaitable (sync ones run in the dependency's own worker)."""
        return self._in_mode(_ASYNC)

    @property
    def to_sync(self) -> ServiceProxy:
        """Every method blocking (not from the event loop: use ``to_async`` there)."""
        return self._in_mode(_SYNC)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        method = self._methods.get(name)
        if method is None:
            api = self._definition.apis.get(name)
            if api is None:
                raise AttributeError(f"service {self._definition.name!r} has no API {name!r} "
                                     f"(its APIs: {sorted(self._definition.apis)})")
            from ..runner.handle import NotInitializedHandle
            from .engine import service_runner

            runner = service_runner(self._definition)
            if isinstance(runner._runner_handle, NotInitializedHandle):
                runner.init_local()  # not served (a script or test): run it in this process
            target = getattr(runner, api.name)
            method = _MethodProxy(target, api, self._mode, f"{self._attr}.{name}",
                                  self._definition.name)
            self._methods[name] = method
        return method

    def __repr__(self) -> str:
        return f"<{self._mode} proxy to service {self._definition.name!r}>"



class URLProxy:
    """``self.dep`` for ``depends(url=...)``: a server's APIs over HTTP. A plain call awaits
    on the event loop and blocks elsewhere; ``to_async``/``to_sync`` choose explicitly."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._sync: Any = None
        self._async: Any = None

    @property
    def to_sync(self) -> Any:
        if self._sync is None:
            from ..client import SyncHTTPClient

            self._sync = SyncHTTPClient(self._url)
        return self._sync

    @property
    def to_async(self) -> Any:
        if self._async is None:
            from ..client import AsyncHTTPClient

            self._async = AsyncHTTPClient(self._url)
        return self._async

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.to_async if on_event_loop() else self.to_sync, name)
