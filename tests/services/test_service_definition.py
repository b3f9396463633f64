"""Service and @svc.api: every mistake is reported when the service is defined."""
from __future__ import annotations

import asyncio

import pytest

import bentolite
from bentolite.exceptions import BentoMLException, InvalidArgument
from bentolite.io import JSON, Multipart, NumpyNdarray, Text


class Echo(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=False)
    def echo(self, value):
        return value


def test_name_is_lower_cased_and_validated() -> None:
    assert bentolite.Service("My_Service").name == "my_service"
    with pytest.raises(ValueError, match="not a valid"):
        bentolite.Service("bad name!")


def test_duplicate_runner_names() -> None:
    first, second = bentolite.Runner(Echo, name="same"), bentolite.Runner(Echo, name="same")
    with pytest.raises(ValueError, match="Found duplicate name"):
        bentolite.Service("svc", runners=[first, second])


def test_runners_must_be_runners() -> None:
    with pytest.raises(ValueError, match="Runner"):
        bentolite.Service("svc", runners=["not a runner"])


def test_api_returns_function_unchanged_and_records_api() -> None:
    svc = bentolite.Service("svc")

    def predict(text: str) -> str:
        """Doc line."""
        return text.upper()

    assert svc.api(input=Text(), output=Text())(predict) is predict
    api = svc.apis["predict"]
    assert (api.route, api.doc, api.is_async, api.ctx_param) == ("/predict", "Doc line.", False, None)
    assert predict("a") == "A"


def test_async_api_and_ctx_param() -> None:
    svc = bentolite.Service("svc")

    @svc.api(input=JSON(), output=JSON(), name="other", route="v1/other")
    async def predict(obj, context: bentolite.Context):
        return obj

    api = svc.apis["other"]
    assert (api.route, api.is_async, api.ctx_param) == ("/v1/other", True, "context")
    assert asyncio.run(predict(1, svc.context)) == 1


def test_duplicate_api_name_and_route() -> None:
    svc = bentolite.Service("svc")
    svc.api(input=Text(), output=Text(), name="a")(lambda x: x)
    with pytest.raises(BentoMLException, match="already defined"):
        svc.api(input=Text(), output=Text(), name="a", route="/other")(lambda x: x)
    with pytest.raises(BentoMLException, match="already used by API 'a'"):
        svc.api(input=Text(), output=Text(), name="b", route="/a")(lambda x: x)


@pytest.mark.parametrize("kw", [{"name": "docs"}, {"name": "metrics"}, {"name": "readyz"},
                                {"name": "ok", "route": "/livez"}, {"name": "ok", "route": "a?b"},
                                {"name": "not-an-identifier"}])
def test_reserved_or_bad_names_and_routes(kw: dict[str, str]) -> None:
    svc = bentolite.Service("svc")
    with pytest.raises(InvalidArgument):
        svc.api(input=Text(), output=Text(), **kw)(lambda x: x)


def test_input_and_output_must_be_descriptors() -> None:
    svc = bentolite.Service("svc")
    with pytest.raises(InvalidArgument, match="input must be an IO descriptor"):
        svc.api(input=str, output=Text(), name="f")(lambda x: x)
    with pytest.raises(InvalidArgument, match="output must be an IO descriptor"):
        svc.api(input=Text(), output="text", name="f")(lambda x: x)


def test_parameter_count() -> None:
    svc = bentolite.Service("svc")
    with pytest.raises(InvalidArgument, match="got 0"):
        svc.api(input=Text(), output=Text(), name="f")(lambda: 1)
    with pytest.raises(InvalidArgument, match="got 3"):
        svc.api(input=Text(), output=Text(), name="f")(lambda a, b, c: 1)
    with pytest.raises(InvalidArgument, match="annotated bentolite.Context"):

        @svc.api(input=Text(), output=Text())
        def typed(text: str, other: int) -> str:
            return text


def test_multipart_parameters_match_fields() -> None:
    svc = bentolite.Service("svc")
    form = Multipart(a=Text(), b=NumpyNdarray())

    @svc.api(input=form, output=JSON())
    def good(b, a, ctx):
        return {}

    assert svc.apis["good"].multipart_fields == ["a", "b"]
    assert svc.apis["good"].ctx_param == "ctx"
    with pytest.raises(InvalidArgument, match="no parameter for Multipart fields \\['b'\\]"):
        svc.api(input=form, output=JSON(), name="missing")(lambda a: a)
    with pytest.raises(InvalidArgument, match="not Multipart fields"):
        svc.api(input=form, output=JSON(), name="extra")(lambda a, b, c: a)


unlisted_runner = bentolite.Runner(Echo, name="unlisted")


def test_runner_used_but_not_listed() -> None:
    listed = bentolite.Runner(Echo, name="listed")
    svc = bentolite.Service("svc", runners=[listed])

    @svc.api(input=JSON(), output=JSON())
    def fine(obj):
        return listed.echo.run(obj)

    with pytest.raises(BentoMLException, match="calls runner 'unlisted'.*runners="):

        @svc.api(input=JSON(), output=JSON())
        def uses_global(obj):
            return unlisted_runner.echo.run(obj)

    with pytest.raises(BentoMLException, match="calls runner 'unlisted'"):

        @svc.api(input=JSON(), output=JSON())
        async def uses_nested(obj):
            async def inner():
                return await unlisted_runner.echo.async_run(obj)

            return await inner()


def test_hooks_are_recorded() -> None:
    svc = bentolite.Service("svc")

    @svc.on_startup
    def start(ctx):
        ctx.state["x"] = 1

    @svc.on_shutdown
    async def stop(ctx):
        pass

    assert svc.startup_hooks == [start] and svc.shutdown_hooks == [stop]


def test_context_outside_a_request_is_usable() -> None:
    ctx = bentolite.Service("svc").context
    ctx.response.set_cookie("k", "v", httponly=True)
    assert ctx.response.status_code == 200
    assert ctx.response.cookies[0].httponly
    assert dict(ctx.request.headers) == {}


def test_runner_defined_after_the_api_is_caught_at_serve_time() -> None:
    from bentolite.server.app import build_app

    namespace: dict[str, object] = {}
    exec(
        "import bentolite\nfrom bentolite.io import JSON\n"
        "svc = bentolite.Service('late')\n"
        "@svc.api(input=JSON(), output=JSON())\n"
        "def predict(obj):\n    return late_runner.echo.run(obj)\n",
        namespace,
    )
    namespace["late_runner"] = bentolite.Runner(Echo, name="late_runner")
    svc = namespace["svc"]
    with pytest.raises(BentoMLException, match="calls runner 'late_runner'"):
        svc.check_runners_listed()
    with pytest.raises(BentoMLException, match="calls runner 'late_runner'"):
        build_app(svc)


def test_asgi_middleware_is_refused_clearly() -> None:
    svc = bentolite.Service("svc")
    with pytest.raises(BentoMLException, match="not supported by bentolite.*mount_asgi_app"):
        svc.add_asgi_middleware(object)
