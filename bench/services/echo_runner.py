"""Echo scenario through a trivial runner: the API hands its input to a runner and back."""

from __future__ import annotations

from _impl import bentoml

__all__ = ["svc", "EchoRunnable"]


class EchoRunnable(bentoml.Runnable):
    """A runnable whose one method returns its argument."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True  # one runner worker, as in the batching scenario

    @bentoml.Runnable.method(batchable=False)
    def echo(self, text: str) -> str:
        """Return ``text`` unchanged."""
        return text


echo_runner = bentoml.Runner(EchoRunnable, name="echo_runner")
svc = bentoml.Service("bench_echo_runner", runners=[echo_runner])


@svc.api(input=bentoml.io.Text(), output=bentoml.io.Text())
async def echo(text: str) -> str:
    """Return the request body after a round trip through the runner."""
    return await echo_runner.echo.async_run(text)
