"""``@bentolite.service`` / ``@bentolite.api`` / ``depends``: checks at definition time and
in-process calls (a script or test that instantiates a service)."""
from __future__ import annotations

import asyncio
import logging
import typing as t

import pytest

import bentolite as bentoml
from bentolite.exceptions import BentoMLException, InvalidArgument


def test_service_bare_and_with_settings() -> None:
    @bentoml.service
    class Bare:
        @bentoml.api
        def hi(self, name: str) -> str:
            return f"hi {name}"

    @bentoml.service(name="named", workers=3, resources={"cpu": 2, "memory": "1Gi"},
                     traffic={"timeout": 5, "max_concurrency": 4}, envs=[{"name": "X_ENV"}])
    class WithSettings:
        @bentoml.api(route="/v1/hello", name="hello", batchable=True, max_batch_size=8)
        def hi(self, names: t.List[str]) -> t.List[str]:
            return names

    assert Bare.name == "Bare" and list(Bare.apis) == ["hi"]
    assert WithSettings.name == "named" and WithSettings.workers == 3
    api = WithSettings.apis["hello"]
    assert (api.route, api.batchable, api.max_batch_size) == ("/v1/hello", True, 8)
    assert Bare().hi("ann") == "hi ann"  # calling the class builds a plain instance


def test_unknown_settings_are_refused_with_their_name() -> None:
    with pytest.raises(InvalidArgument, match=r"unknown setting\(s\) \['wrokers'\]"):
        bentoml.service(wrokers=2)(type("S", (), {}))
    with pytest.raises(InvalidArgument, match=r"unknown resources key\(s\) \['gpus'\]"):
        bentoml.service(resources={"gpus": 1})(type("S", (), {}))
    with pytest.raises(InvalidArgument, match="workers must be a positive int"):
        bentoml.service(workers=0)(type("S", (), {}))


def test_cloud_only_settings_are_accepted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bentolite.services"):
        bentoml.service(image="python:3.11", labels={"team": "a"})(type("S", (), {}))
    assert "image, labels ignored when serving locally" in caplog.text


def test_api_checks() -> None:
    def __hidden(self: t.Any) -> None: ...

    with pytest.raises(InvalidArgument, match="reserved"):
        bentoml.api(__hidden)
    with pytest.raises(InvalidArgument, match="generator cannot be batchable"):
        @bentoml.api(batchable=True)
        def gen(self: t.Any, xs: list) -> t.Iterator[int]:
            yield 1
    with pytest.raises(InvalidArgument, match="share route"):
        @bentoml.service
        class Clash:
            @bentoml.api(route="same")
            def a(self) -> int:
                return 1

            @bentoml.api(route="/same")
            def b(self) -> int:
                return 2


def test_depends_needs_a_service() -> None:
    with pytest.raises(InvalidArgument, match="@bentolite.service class"):
        bentoml.depends(object)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="needs a service class or url"):
        bentoml.depends()


@bentoml.service
class _Echo:
    @bentoml.api
    def echo(self, text: str) -> str:
        return text

    @bentoml.api
    async def aecho(self, text: str) -> str:
        await asyncio.sleep(0)
        return text * 2


@bentoml.service
class _Caller:
    echo = bentoml.depends(_Echo)

    @bentoml.api
    def call_sync(self, text: str) -> str:
        return self.echo.echo(text, unknown_kwarg=1)

    @bentoml.api
    async def call_async(self, text: str) -> t.List[str]:
        return [await self.echo.to_async.echo(text), await self.echo.aecho(text)]

    @bentoml.api
    async def call_blocking(self, text: str) -> str:
        return self.echo.to_sync.echo(text)


def test_in_process_calls_and_dropped_arguments(caplog: pytest.LogCaptureFixture) -> None:
    caller = _Caller()
    with caplog.at_level(logging.WARNING, logger="bentolite.services"):
        assert caller.call_sync("a") == "a"
        assert caller.call_sync("b") == "b"
    dropped = [r for r in caplog.records if "unknown_kwarg" in r.getMessage()]
    assert len(dropped) == 1  # one warning per method, not per call
    assert asyncio.run(caller.call_async("x")) == ["x", "xx"]


def test_a_blocking_call_on_the_event_loop_says_to_use_to_async() -> None:
    with pytest.raises(BentoMLException, match=r"await self\.echo\.to_async\.echo\(\.\.\.\)"):
        asyncio.run(_Caller().call_blocking("a"))


def test_dependency_cycles_are_refused() -> None:
    @bentoml.service
    class A:
        pass

    @bentoml.service
    class B:
        a = bentoml.depends(A)

    A.dependencies["b"] = bentoml.depends(B)  # close the loop after the fact
    with pytest.raises(BentoMLException, match="cycle: A -> B -> A"):
        list(A.all_services())


def test_legacy_namespace_is_the_v1_api() -> None:
    from bentolite.runner.runner import Runner
    from bentolite.services.service import Service

    assert bentoml.legacy.Service is Service and bentoml.legacy.Runner is Runner
    assert bentoml.legacy.Runnable is bentoml.Runnable and bentoml.legacy.io is bentoml.io


def test_service_strategy_gives_workers_and_resources(caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from bentolite.runner.strategy import NvidiaGpuResource
    from bentolite.services.engine import service_runner

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    @bentoml.service(workers=3, resources={"cpu": "2"})
    class Threads:
        @bentoml.api
        def hi(self) -> str:
            return "hi"

    @bentoml.service(resources={"gpu": 1})
    class Gpu:
        @bentoml.api
        def hi(self) -> str:
            return "hi"

    envs = service_runner(Threads).scheduled_workers()
    assert sorted(envs) == [0, 1, 2]
    assert all(env["OMP_NUM_THREADS"] == "2" and "CUDA_VISIBLE_DEVICES" not in env
               for env in envs.values())
    gpus = NvidiaGpuResource.from_system()
    with caplog.at_level(logging.WARNING, logger="bentolite.services"):
        env = service_runner(Gpu).scheduled_workers()[0]
    if gpus:
        assert env["CUDA_VISIBLE_DEVICES"] == str(gpus[0])
    else:  # asked for a GPU on a machine without one: CPU, and a warning that says so
        assert env["CUDA_VISIBLE_DEVICES"] == "-1"
        assert "asks for 1 GPU(s) per worker; this machine has 0" in caplog.text


@bentoml.service
class _Divider:
    @bentoml.api
    def div(self, a: int, b: int) -> float:
        return a / b


@bentoml.service
class _UsesDivider:
    divider = bentoml.depends(_Divider)

    @bentoml.api
    async def go(self) -> t.List[t.Any]:
        # the first call runs in the model thread; once measured short, on the loop
        out: t.List[t.Any] = [await self.divider.to_async.div(4, 2) for _ in range(3)]
        try:
            await self.divider.to_async.div(1, 0)
        except ZeroDivisionError as exc:
            out.append(type(exc).__name__)
        return out


def test_short_sync_calls_run_on_the_loop_with_their_errors() -> None:
    from bentolite.services.engine import service_runner

    assert asyncio.run(_UsesDivider().go()) == [2.0, 2.0, 2.0, "ZeroDivisionError"]
    worker = service_runner(_Divider)._runner_handle._worker  # type: ignore[attr-defined]
    assert worker._direct_inline("div")  # measured short, model thread idle: inline
