from __future__ import annotations

import asyncio

import pytest
from io_helpers import bad_input, msg

from bentolite.exceptions import InvalidArgument
from bentolite.io import Text, from_spec


def test_decodes_utf8_whatever_the_content_type():
    assert Text().decode(msg("héllo", "application/octet-stream")) == "héllo"
    assert Text().decode(msg(b"")) == ""


def test_non_utf8_is_bad_input_naming_the_byte():
    error = bad_input(Text(), msg(b"ok\xff"))
    assert error.field == "body"
    assert "UTF-8" in error.message and "byte 2" in error.message


def test_encode_sets_charset_and_refuses_non_str():
    out = Text().encode("héllo")
    assert out.body == "héllo".encode()
    assert out.headers["content-type"] == "text/plain; charset=utf-8"
    with pytest.raises(InvalidArgument):
        Text().encode(b"bytes")  # type: ignore[arg-type]


def test_streaming_output_is_detected_and_encoded_chunk_by_chunk():
    text = Text(content_type="text/event-stream")

    async def tokens():
        for word in ("a", "é", "c"):
            yield word

    async def collect():
        stream = tokens()
        assert text.is_streaming(stream)
        return [chunk async for chunk in text.encode_stream(stream)]

    assert asyncio.run(collect()) == [b"a", "é".encode(), b"c"]
    assert not text.is_streaming("a str")
    assert text.stream_headers()["Content-Type"] == "text/event-stream; charset=utf-8"


def test_spec_round_trip_and_schema():
    text = Text(content_type="text/event-stream")
    assert text.to_spec() == {"id": "bentoml.io.Text", "args": {"content_type": "text/event-stream"}}
    rebuilt = from_spec(text.to_spec())
    assert isinstance(rebuilt, Text) and rebuilt.to_spec() == text.to_spec()
    body = text.openapi_request_body()
    assert body["content"]["text/event-stream"]["schema"] == {"type": "string"}
    assert body["x-bentoml-io-descriptor"] == text.to_spec()


def test_from_sample():
    assert isinstance(Text.from_sample("hi"), Text)
    with pytest.raises(InvalidArgument):
        Text.from_sample(3)
