"""The two kinds of Ray Serve replica a bentolite service becomes (see ``bentolite.ray``).

* ``RunnerReplica``: one runner (or new-style service), served by the same ``RunnerWorker``
  (model thread, adaptive batcher per method, batch split/merge) as a ``bentolite serve``
  runner worker; Ray's deployment handle replaces the Unix socket and the framed protocol,
  also for the services it ``depends()`` on.
* ``ApiIngress``: the API server. It runs the same aiohttp app as ``bentolite serve``
  (``build_app``: routes, IO descriptors, error bodies, docs, probes, metrics, request ids)
  on a Unix socket in the replica's own event loop, and Ray Serve's HTTP requests are
  relayed to it byte for byte, so Serve adds no second HTTP layer of ours.

Why a relay: aiohttp has no ASGI entry point (its ``web.Request`` is bound to its own
protocol and transport), so an adapter would re-implement request parsing, streaming and
middleware hooks: a second HTTP layer to keep in step. The relay costs 0.35-0.6 ms per
request on a 2-core box (``bench/ray_serve.py``), against about 13 ms of CPU that Serve's
proxy and router take per request there.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, AsyncIterator

import attrs

if TYPE_CHECKING:  # pragma: no cover
    from ray.serve.handle import DeploymentHandle
    from starlette.requests import Request
    from starlette.responses import Response

    from ..config import BentoliteConfig
    from ..runner.batching import BatchLimits

__all__ = ["ServiceTarget", "RunnerReplica", "ApiIngress"]

#: hop-by-hop headers (RFC 9110 7.6.1) and the framing headers the relay sets itself
_HOP_HEADERS = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
    b"transfer-encoding", b"upgrade", b"content-length",
})


@attrs.frozen
class ServiceTarget:
    """How every replica imports the service (``bentolite.load(import_string, working_dir)``)
    and the configuration it runs with: the driver's, so nodes need no config file.
    ``model_store``: a bento's own ``models/``, the model store of every replica."""

    import_string: str
    working_dir: str
    config: BentoliteConfig | None = None
    model_store: str | None = None

    def load(self) -> Any:
        from ..config import set_config
        from ..models.store import MODEL_STORE_ENV
        from ..services.loader import load

        if self.config is not None:
            set_config(self.config)
        if self.model_store is not None:
            os.environ[MODEL_STORE_ENV] = self.model_store
        return load(self.import_string, self.working_dir)


class RunnerReplica:
    """One replica of runner ``runner_name``: its Runnable and a batcher per method.

    ``limits``: method name -> batching settings for this deployment (from ``enable_batching``
    and ``batching_config``); methods not named keep their runner's own. ``dependencies``:
    runner name -> the deployment handle of each service this one ``depends()`` on.
    """

    async def __init__(self, target: ServiceTarget, runner_name: str,
                       limits: dict[str, BatchLimits],
                       dependencies: dict[str, DeploymentHandle]) -> None:
        from ..runner.worker import RunnerWorker
        from .handle import connect

        [runner] = [r for r in target.load().runners if r.name == runner_name]
        for dependency in getattr(runner, "dependencies", ()):
            connect(dependency, dependencies)  # before the instance: its hooks may call them
        for method in runner.runner_methods:
            if method.name in limits:
                method.limits = limits[method.name]
                method.config = attrs.evolve(method.config,
                                             batchable=method.limits.batchable)
        self._worker = RunnerWorker(runner)
        # the Runnable is built in its model thread; Ray's event loop stays free meanwhile
        await asyncio.get_running_loop().run_in_executor(None, self._worker.load)
        self._worker.make_batchers()

    async def call(self, method_name: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """``(True, result)`` or ``(False, error meta)``: errors travel as on the local hop."""
        try:
            return True, await self._worker.call(method_name, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller rebuilds it (error_from_meta)
            return False, self._worker.error_meta(exc)

    async def stream(self, method_name: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> AsyncIterator[tuple[bool, Any]]:
        """What a generator method yields, as ``(True, item)``; an error ends it as in ``call``."""
        try:
            async for item in self._worker.stream(method_name, args, kwargs):
                yield True, item
        except Exception as exc:  # noqa: BLE001
            yield False, self._worker.error_meta(exc)

    async def ping(self) -> bool:
        return True

    async def __del__(self) -> None:
        if hasattr(self, "_worker"):  # also called after a failed __init__
            await self._worker.close()


class ApiIngress:
    """The API server replica: bentolite's aiohttp app, reached through Ray Serve's HTTP proxy.

    ``runners``: runner name -> its deployment's handle (Ray fills these in at start-up);
    a runner without one (a new-style root, an embedded runner) runs in this replica.
    """

    async def __init__(self, target: ServiceTarget,
                       runners: dict[str, DeploymentHandle]) -> None:
        import aiohttp
        from aiohttp import web

        from ..server.app import build_app, start_app_runner
        from .handle import connect

        service = target.load()

        def runner_init(runner: Any) -> None:
            if runner.name in runners:
                connect(runner, runners)
            else:  # as in a `bentolite serve` API worker
                runner.init_local(quiet=True)

        self._dir = tempfile.mkdtemp(prefix="bentolite-ray-")
        socket_path = os.path.join(self._dir, "api.sock")
        self._app_runner = await start_app_runner(build_app(service, runner_init=runner_init))
        await web.UnixSite(self._app_runner, socket_path).start()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(socket_path), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"))

    async def __call__(self, request: Request) -> Response:
        from starlette.responses import Response, StreamingResponse

        scope = request.scope
        path = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):  # serve.run(..., route_prefix="/x")
            path = path[len(root):] or "/"
        query = scope.get("query_string") or b""
        url = f"http://bentolite{path}" + (f"?{query.decode('latin-1')}" if query else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k not in _HOP_HEADERS]
        body = await request.body()
        upstream = await self._session.request(request.method, url, data=body or None,
                                               headers=headers)
        raw = [(k.lower(), v) for k, v in upstream.raw_headers if k.lower() not in _HOP_HEADERS]
        if upstream.headers.get("Transfer-Encoding", "").lower() != "chunked":
            try:
                content = await upstream.read()
            finally:
                upstream.release()
            response = Response(content, status_code=upstream.status)
            response.raw_headers = [*raw, (b"content-length", str(len(content)).encode())]
            return response

        async def chunks() -> AsyncIterator[bytes]:  # a streamed API result, chunk by chunk
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        streaming = StreamingResponse(chunks(), status_code=upstream.status)
        streaming.raw_headers = raw
        return streaming

    async def __del__(self) -> None:
        if hasattr(self, "_session"):  # also called after a failed __init__
            await self._session.close()
            await self._app_runner.cleanup()  # the service's shutdown hooks run here
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)
