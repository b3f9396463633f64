"""A service whose API calls a runner missing from runners=: refused when it is defined."""
from __future__ import annotations

import bentolite
from bentolite.io import JSON

__all__ = ["svc"]


class Echo(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=False)
    def echo(self, value):
        return value


forgotten = bentolite.Runner(Echo, name="forgotten")
svc = bentolite.Service("unlisted")


@svc.api(input=JSON(), output=JSON())
def predict(obj):
    return forgotten.echo.run(obj)
