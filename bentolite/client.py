"""HTTP client for a served Service, built from its ``/docs.json`` (v1 ``bentoml.client``)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Callable

from .exceptions import BentoMLException

__all__ = ["Client", "HTTPClient", "ClientAPI"]

_TIMEOUT_S = 300.0


class ClientAPI:
    """One remote API: its route and the descriptors to encode inputs and decode outputs."""

    __slots__ = ("name", "route", "input", "output")

    def __init__(self, name: str, route: str, input: Any, output: Any) -> None:  # noqa: A002
        self.name = name
        self.route = route
        self.input = input
        self.output = output


def _parse_apis(spec: dict[str, Any]) -> dict[str, ClientAPI]:
    from .io.base import from_spec

    apis: dict[str, ClientAPI] = {}
    for route, item in spec.get("paths", {}).items():
        operation = item.get("post")
        if not operation or "Service APIs" not in operation.get("tags", []):
            continue
        try:
            in_spec = operation["requestBody"]["x-bentoml-io-descriptor"]
            out_spec = operation["responses"]["200"]["x-bentoml-io-descriptor"]
            name = operation["x-bentoml-name"]
        except KeyError as exc:
            raise BentoMLException(
                f"{route}: /docs.json lacks {exc.args[0]!r}; is this a BentoML/bentolite server?"
            ) from None
        apis[name] = ClientAPI(name, route, from_spec(in_spec), from_spec(out_spec))
    return apis


class Client:
    """Call a server's APIs: ``client.<api>(inp)``, ``await client.async_<api>(inp)``, ``call``."""

    def __init__(self, server_url: str, apis: dict[str, ClientAPI]) -> None:
        self.server_url = server_url.rstrip("/")
        self._apis = apis
        for name in apis:
            if not hasattr(self, name):
                setattr(self, name, self._sync_caller(name))
            if not hasattr(self, f"async_{name}"):
                setattr(self, f"async_{name}", self._async_caller(name))

    @classmethod
    def from_url(cls, server_url: str, *, kind: str | None = None,
                 timeout_s: float = _TIMEOUT_S) -> Client:
        """Read ``<server_url>/docs.json`` and build a client for every API it lists."""
        if kind not in (None, "auto", "http"):
            raise BentoMLException(f"client kind {kind!r} is not supported (only 'http')")
        if "://" not in server_url:
            server_url = f"http://{server_url}"
        url = server_url.rstrip("/") + "/docs.json"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                spec = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise BentoMLException(f"Error making request: {exc.code}: {exc.read()!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BentoMLException(f"cannot read {url}: {exc}") from None
        return cls(server_url, _parse_apis(spec))

    @property
    def apis(self) -> dict[str, ClientAPI]:
        return dict(self._apis)

    def _api(self, name: str) -> ClientAPI:
        try:
            return self._apis[name]
        except KeyError:
            raise BentoMLException(
                f"no API {name!r}; this server has: {', '.join(sorted(self._apis))}"
            ) from None

    @staticmethod
    def _input(api: ClientAPI, inp: Any, kwargs: dict[str, Any]) -> Any:
        if kwargs:
            if inp is not None:
                raise BentoMLException(f"API {api.name!r}: give the input or keyword fields, not both")
            return kwargs
        return inp

    def _decode(self, api: ClientAPI, status: int, body: bytes, headers: Any) -> Any:
        from .io.base import HTTPMessage

        if status != 200:
            raise BentoMLException(f"Error making request: {status}: {body.decode(errors='replace')}")
        return api.output.decode(HTTPMessage(body, headers), field="response")

    def call(self, api_name: str, inp: Any = None, **kwargs: Any) -> Any:
        """Call ``api_name`` with ``inp`` (or Multipart fields as keywords) and wait."""
        api = self._api(api_name)
        message = api.input.encode(self._input(api, inp, kwargs), field="input")
        request = urllib.request.Request(
            self.server_url + api.route, data=message.body, headers=dict(message.headers),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                return self._decode(api, response.status, response.read(), response.headers)
        except urllib.error.HTTPError as exc:
            return self._decode(api, exc.code, exc.read(), exc.headers)

    async def async_call(self, api_name: str, inp: Any = None, **kwargs: Any) -> Any:
        """Like ``call``, from async code."""
        import aiohttp

        api = self._api(api_name)
        message = api.input.encode(self._input(api, inp, kwargs), field="input")
        timeout = aiohttp.ClientTimeout(total=_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(self.server_url + api.route, data=message.body,
                                    headers=dict(message.headers)) as response:
                body = await response.read()
                return self._decode(api, response.status, body, response.headers)

    def _sync_caller(self, name: str) -> Callable[..., Any]:
        def caller(inp: Any = None, **kwargs: Any) -> Any:
            return self.call(name, inp, **kwargs)

        caller.__name__ = name
        return caller

    def _async_caller(self, name: str) -> Callable[..., Any]:
        async def caller(inp: Any = None, **kwargs: Any) -> Any:
            return await self.async_call(name, inp, **kwargs)

        caller.__name__ = f"async_{name}"
        return caller

    @staticmethod
    def wait_until_server_ready(host: str, port: int, timeout: float = 30.0) -> None:
        """Poll ``http://host:port/readyz`` until it answers 200; raise TimeoutError after ``timeout`` s."""
        import time

        url = f"http://{host}:{port}/readyz"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=min(5.0, timeout)) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} was not ready within {timeout:g} s")
            time.sleep(0.1)

    def health(self) -> bool:
        """Whether ``/readyz`` answers 200."""
        try:
            with urllib.request.urlopen(self.server_url + "/readyz", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False


HTTPClient = Client
