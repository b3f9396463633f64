"""Helpers shared by the IO descriptor tests."""
from __future__ import annotations

from typing import Any

import pytest

from bentolite.exceptions import BadInput
from bentolite.io import HTTPMessage


def msg(body: bytes | str, content_type: str | None = None, **headers: str) -> HTTPMessage:
    """A message with an optional Content-Type."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    all_headers = dict(headers)
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return HTTPMessage(body, all_headers)


def bad_input(descriptor: Any, message: HTTPMessage, field: str = "body") -> BadInput:
    """Decode, expecting BadInput; return it for checks on the message."""
    with pytest.raises(BadInput) as info:
        descriptor.decode(message, field=field)
    return info.value
