"""HTTP clients of a bentolite (or BentoML) server.

``Client`` is v1's ``bentoml.client`` (built from ``/docs.json``); ``SyncHTTPClient`` and
``AsyncHTTPClient`` are BentoML 1.2+'s (built from ``/schema.json``, named arguments).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Callable

from .exceptions import BentoMLException

__all__ = ["Client", "HTTPClient", "ClientAPI", "SyncHTTPClient", "AsyncHTTPClient"]

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


# --- new-style clients (BentoML 1.2+: ``bentoml.SyncHTTPClient`` / ``AsyncHTTPClient``) -------

class _Endpoint:
    __slots__ = ("name", "route", "params", "is_stream")

    def __init__(self, route: dict[str, Any]) -> None:
        self.name = route["name"]
        self.route = route["route"]
        self.params = list((route.get("input") or {}).get("properties") or {})
        self.is_stream = bool((route.get("output") or {}).get("is_stream"))

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > len(self.params):
            raise TypeError(f"{self.name}() takes {len(self.params)} positional arguments "
                            f"({', '.join(self.params)}), got {len(args)}")
        named = dict(zip(self.params, args))
        clash = sorted(set(named) & set(kwargs))
        if clash:
            raise TypeError(f"{self.name}() got multiple values for {', '.join(clash)}")
        return {**named, **kwargs}


def _is_file(value: Any) -> bool:
    import pathlib

    return isinstance(value, (pathlib.PurePath, bytes)) or (
        hasattr(value, "save") and hasattr(value, "mode"))  # a PIL image


def _request_body(values: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """JSON of the named arguments, or multipart/form-data when one of them is a file."""
    if not any(_is_file(v) for v in values.values()):
        return json.dumps(values, default=_jsonable).encode(), {"Content-Type": "application/json"}
    import io
    import pathlib

    from .io._formdata import build_form_data

    parts = []
    for name, value in values.items():
        if isinstance(value, pathlib.PurePath):
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Disposition": f'form-data; name="{name}"; filename="{value.name}"'}
            parts.append((name, headers, pathlib.Path(value).read_bytes()))
        elif isinstance(value, bytes):
            parts.append((name, {"Content-Type": "application/octet-stream"}, value))
        elif _is_file(value):
            buffer = io.BytesIO()
            value.save(buffer, format="PNG")
            parts.append((name, {"Content-Type": "image/png"}, buffer.getvalue()))
        else:
            parts.append((name, {"Content-Type": "application/json"},
                          json.dumps(value, default=_jsonable).encode()))
    body, content_type = build_form_data(parts)
    return body, {"Content-Type": content_type}


def _jsonable(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if tolist is not None:
        return tolist()
    dump = getattr(value, "model_dump", None)  # pydantic models
    if dump is not None:
        return dump(mode="json")
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


def _response_value(status: int, content_type: str, body: bytes) -> Any:
    if status >= 400:
        try:
            message = json.loads(body).get("error", body.decode(errors="replace"))
        except (ValueError, AttributeError):
            message = body.decode(errors="replace")
        raise BentoMLException(f"{status}: {message}")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        return json.loads(body)
    if mime.startswith("text/"):
        return body.decode()
    if mime.startswith("image/"):
        import io

        from PIL import Image

        return Image.open(io.BytesIO(body))
    return body


class _HTTPClientBase:
    def __init__(self, url: str, *, media_type: str = "application/json",
                 server_ready_timeout: float | None = None, token: str | None = None,
                 timeout: float = 30) -> None:
        if media_type != "application/json":
            raise BentoMLException("only media_type='application/json' is supported")
        if "://" not in url:
            url = f"http://{url}"
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._server_ready_timeout = server_ready_timeout
        self.endpoints: dict[str, _Endpoint] = {}

    def _add_endpoints(self, schema: dict[str, Any]) -> None:
        for route in schema.get("routes") or []:
            endpoint = _Endpoint(route)
            self.endpoints[endpoint.name] = endpoint
            if not hasattr(type(self), endpoint.name):
                setattr(self, endpoint.name, self._caller(endpoint))

    def _caller(self, endpoint: _Endpoint) -> Callable[..., Any]:
        raise NotImplementedError

    def _endpoint(self, name: str) -> _Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise BentoMLException(f"no API {name!r}; this server has: "
                                   f"{', '.join(sorted(self.endpoints))}") from None


class SyncHTTPClient(_HTTPClientBase):
    """Call a new-style server: ``client.<api>(*args, **kwargs)``, one method per route of
    its ``/schema.json``; streamed APIs give an iterator of text (or bytes) chunks."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        if self._server_ready_timeout is None or self._server_ready_timeout > 0:
            self.wait_until_server_ready(self._server_ready_timeout)
        status, _, body = self._send("GET", "/schema.json", None, {})
        if status != 200:
            raise BentoMLException(f"cannot read {self.url}/schema.json: {status}")
        self._add_endpoints(json.loads(body))

    def _send(self, method: str, path: str, body: bytes | None,
              headers: dict[str, str]) -> tuple[int, str, bytes]:
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={**self._headers, **headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.headers.get("content-type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("content-type", ""), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise BentoMLException(f"cannot reach {self.url}{path}: {exc}") from None

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call API ``name`` and wait for its result."""
        endpoint = self._endpoint(name)
        body, headers = _request_body(endpoint.arguments(args, kwargs))
        if endpoint.is_stream:
            return self._stream(endpoint, body, headers)
        return _response_value(*self._send("POST", endpoint.route, body, headers))

    def _stream(self, endpoint: _Endpoint, body: bytes, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(self.url + endpoint.route, data=body, method="POST",
                                         headers={**self._headers, **headers})
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            return _response_value(exc.code, exc.headers.get("content-type", ""), exc.read())
        text = response.headers.get("content-type", "").startswith("text/")
        with response:
            while chunk := response.read1(65536):
                yield chunk.decode() if text else chunk

    def _caller(self, endpoint: _Endpoint) -> Callable[..., Any]:
        def caller(*args: Any, **kwargs: Any) -> Any:
            return self.call(endpoint.name, *args, **kwargs)

        caller.__name__ = endpoint.name
        return caller

    def is_ready(self, timeout: float | None = None) -> bool:
        """Whether ``/readyz`` answers 200."""
        try:
            return self._send("GET", "/readyz", None, {})[0] == 200
        except BentoMLException:
            return False

    def wait_until_server_ready(self, timeout: float | None = None) -> None:
        """Poll ``/readyz`` until 200; raise TimeoutError after ``timeout`` s (default 30)."""
        import time

        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        while not self.is_ready():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.url} was not ready within {timeout} s")
            time.sleep(0.1)

    def close(self) -> None:
        """Nothing to release (one connection per call); here for BentoML's API."""

    def __enter__(self) -> SyncHTTPClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncHTTPClient(_HTTPClientBase):
    """``await client.<api>(...)``; build it with ``await AsyncHTTPClient.from_url(url)`` or
    use it as ``async with AsyncHTTPClient(url) as client`` (reads ``/schema.json``)."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._session: Any = None

    async def _setup(self) -> None:
        if self._session is not None:
            return
        import aiohttp

        self._session = aiohttp.ClientSession(
            headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout))
        if self._server_ready_timeout is None or self._server_ready_timeout > 0:
            await self.wait_until_server_ready(self._server_ready_timeout)
        async with self._session.get(self.url + "/schema.json") as response:
            if response.status != 200:
                raise BentoMLException(f"cannot read {self.url}/schema.json: {response.status}")
            self._add_endpoints(await response.json())

    async def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call API ``name`` (not streamed ones: iterate ``client.<api>(...)`` for those)."""
        await self._setup()
        endpoint = self._endpoint(name)
        body, headers = _request_body(endpoint.arguments(args, kwargs))
        async with self._session.post(self.url + endpoint.route, data=body,
                                      headers=headers) as response:
            return _response_value(response.status, response.headers.get("content-type", ""),
                                   await response.read())

    async def _stream(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        await self._setup()
        endpoint = self._endpoint(name)
        body, headers = _request_body(endpoint.arguments(args, kwargs))
        async with self._session.post(self.url + endpoint.route, data=body,
                                      headers=headers) as response:
            if response.status >= 400:
                _response_value(response.status, response.headers.get("content-type", ""),
                                await response.read())
            text = response.headers.get("content-type", "").startswith("text/")
            async for chunk in response.content.iter_any():
                yield chunk.decode() if text else chunk

    def _caller(self, endpoint: _Endpoint) -> Callable[..., Any]:
        if endpoint.is_stream:
            def stream(*args: Any, **kwargs: Any) -> Any:
                return self._stream(endpoint.name, args, kwargs)

            stream.__name__ = endpoint.name
            return stream

        async def caller(*args: Any, **kwargs: Any) -> Any:
            return await self.call(endpoint.name, *args, **kwargs)

        caller.__name__ = endpoint.name
        return caller

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self._session is not None:
            raise AttributeError(name)

        async def call_before_setup(*args: Any, **kwargs: Any) -> Any:
            return await self.call(name, *args, **kwargs)

        return call_before_setup

    async def is_ready(self, timeout: float | None = None) -> bool:
        """Whether ``/readyz`` answers 200."""
        import aiohttp

        try:
            async with self._session.get(self.url + "/readyz") as response:
                return response.status == 200
        except (aiohttp.ClientError, OSError):
            return False

    async def wait_until_server_ready(self, timeout: float | None = None) -> None:
        import asyncio
        import time

        deadline = time.monotonic() + (30.0 if timeout is None else timeout)
        while not await self.is_ready():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.url} was not ready within {timeout} s")
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncHTTPClient:
        await self._setup()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
