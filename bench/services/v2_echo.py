"""Echo scenario, new style (BentoML 1.2+): a ``str -> str`` API on a service, no dependency."""

from __future__ import annotations

from _impl import bentoml

__all__ = ["Echo"]


@bentoml.service(workers=1, traffic={"timeout": 60})
class Echo:
    """Returns its input: the cost of the serving path alone."""

    @bentoml.api
    def echo(self, text: str) -> str:
        """Return ``text`` unchanged."""
        return text
