"""Echo scenario without a runner: a Text-to-Text API that returns its input."""

from __future__ import annotations

from _impl import bentoml

__all__ = ["svc"]

svc = bentoml.Service("bench_echo")


@svc.api(input=bentoml.io.Text(), output=bentoml.io.Text())
async def echo(text: str) -> str:
    """Return the request body unchanged."""
    return text
