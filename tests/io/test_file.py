from __future__ import annotations

import io

import pytest
from io_helpers import bad_input, msg

from bentolite.exceptions import BadInput, InvalidArgument
from bentolite.io import File, from_spec
from bentolite.io._formdata import build_form_data


def test_raw_body():
    upload = File().decode(msg(b"\x00\x01", "application/octet-stream"))
    assert upload.read() == b"\x00\x01" and upload.name == "<request body>"


def test_mime_type_is_checked():
    assert File(mime_type="application/pdf").decode(msg(b"%PDF", "application/pdf")).read() == b"%PDF"
    error = bad_input(File(mime_type="application/pdf"), msg(b"x", "text/plain"))
    assert "application/pdf" in error.message and "text/plain" in error.message


def test_multipart_takes_the_first_file_part():
    body, content_type = build_form_data(
        [
            ("note", {}, b"hi"),
            ("doc", {"Content-Type": "text/csv", "Content-Disposition": 'form-data; filename="d.csv"'}, b"a\n1\n"),
        ]
    )
    upload = File().decode(msg(body, content_type))
    assert upload.name == "d.csv" and upload.read() == b"a\n1\n"
    assert "no file of type image/png" in bad_input(File(mime_type="image/png"), msg(body, content_type)).message


def test_broken_multipart_is_400():
    error = bad_input(File(), msg(b"--xyz\r\nContent-Type: a/b\r\n\r\ndata", "multipart/form-data; boundary=xyz"))
    assert "truncated" in error.message
    assert "boundary" in bad_input(File(), msg(b"x", "multipart/form-data")).message


def test_encode_bytes_and_file_objects():
    assert File().encode(b"abc").headers["content-type"] == "application/octet-stream"
    assert File(mime_type="text/csv").encode(io.BytesIO(b"a")).body == b"a"
    with pytest.raises(BadInput):
        File().encode(3)


def test_spec_schema_and_sample(tmp_path):
    assert File().openapi_request_body()["content"] == {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    assert from_spec(File(mime_type="text/csv").to_spec()).to_spec()["args"]["mime_type"] == "text/csv"
    path = tmp_path / "x.csv"
    path.write_text("a\n")
    assert File.from_sample(path).to_spec()["args"]["mime_type"] == "text/csv"
    with pytest.raises(InvalidArgument):
        File(kind="textio")
