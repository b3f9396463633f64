"""A service using every IO descriptor, a runner, Context and slow APIs, for the server tests."""
from __future__ import annotations

import asyncio
import time

import bentolite
from bentolite.io import JSON, File, Image, Multipart, NumpyNdarray, PandasDataFrame, PandasSeries, Text

__all__ = ["svc"]


class AddOne(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=False)
    def add(self, values):
        return [v + 1 for v in values]


add_runner = bentolite.Runner(AddOne, name="add_one")
svc = bentolite.Service("test_service", runners=[add_runner])


@svc.on_startup
def remember_start(ctx: bentolite.Context) -> None:
    ctx.state["started"] = True


@svc.api(input=Text(), output=Text())
def echo_text(text: str) -> str:
    """Echo the text back."""
    return text


@svc.api(input=JSON(), output=JSON())
def echo_json(obj):
    return obj


@svc.api(input=NumpyNdarray(dtype="float32", enforce_dtype=True), output=NumpyNdarray())
def double(arr):
    return arr * 2


@svc.api(input=PandasDataFrame(), output=PandasDataFrame())
def frame(df):
    return df


@svc.api(input=PandasSeries(), output=PandasSeries())
def series(s):
    return s


@svc.api(input=Image(), output=Image(mime_type="image/png"))
def image(img):
    return img


@svc.api(input=File(), output=File())
def file(f):
    return f.read()


@svc.api(input=Multipart(name=Text(), values=JSON()), output=JSON())
def form(name, values):
    return {"name": name, "values": values}


@svc.api(input=JSON(), output=JSON())
def runner_sync(values):
    return add_runner.add.run(values)


@svc.api(input=JSON(), output=JSON())
async def runner_async(values):
    return await add_runner.add.async_run(values)


@svc.api(input=JSON(), output=JSON(), route="/custom/ctx")
def with_ctx(obj, ctx: bentolite.Context):
    ctx.response.status_code = 201
    ctx.response.headers["X-Custom"] = ctx.request.headers.get("X-In", "none")
    ctx.response.set_cookie("session", "abc")
    return {"started": ctx.state.get("started", False), "query": dict(ctx.request.query_params)}


@svc.api(input=JSON(), output=JSON())
async def sleep_async(obj):
    await asyncio.sleep(float(obj["seconds"]))
    return obj


@svc.api(input=JSON(), output=JSON())
def sleep_sync(obj):
    time.sleep(float(obj["seconds"]))
    return obj


@svc.api(input=JSON(), output=JSON())
def fails(obj):
    raise RuntimeError("boom in user code")


inference_count = bentolite.metrics.Counter(
    "test_service_inference", "Inferences by the echo_json API", labelnames=["outcome"]
)


@svc.api(input=JSON(), output=JSON())
def counted(obj):
    inference_count.labels(outcome="ok").inc()
    return obj


@svc.api(input=JSON(), output=Text())
async def stream_words(obj):
    async def words():
        for word in obj["words"]:
            yield word + " "
            await asyncio.sleep(0)
        if obj.get("fail"):
            raise RuntimeError("stream failed midway")

    return words()


@svc.api(input=JSON(), output=JSON())
def monitored(obj):
    with bentolite.monitor("svc_monitor") as mon:
        mon.log(obj["x"], name="x", role="feature", data_type="numerical")
        mon.log(obj["x"] * 2, name="y", role="prediction", data_type="numerical")
    return obj
