from __future__ import annotations

import io

import numpy as np
import PIL.Image
import pytest
from io_helpers import bad_input, msg

from bentolite.exceptions import BadInput, InvalidArgument
from bentolite.io import Image, from_spec
from bentolite.io._formdata import build_form_data


def png_bytes(mode: str = "RGBA", size: tuple[int, int] = (4, 3)) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new(mode, size, color=0).save(buffer, format="PNG")
    return buffer.getvalue()


def test_raw_body_is_fully_loaded_and_converted_to_pilmode():
    image = Image().decode(msg(png_bytes("RGBA"), "image/png"))
    assert image.size == (4, 3) and image.mode == "RGB"
    assert Image(pilmode=None).decode(msg(png_bytes("RGBA"), "image/png")).mode == "RGBA"


def test_missing_content_type_is_400_listing_allowed_types():
    error = bad_input(Image(allowed_mime_types=["image/png"]), msg(png_bytes()))
    assert "Content-Type" in error.message and "image/png" in error.message


def test_disallowed_mime_type_lists_allowed_ones():
    error = bad_input(Image(allowed_mime_types=["image/png", "image/jpeg"]), msg(b"x", "text/plain"))
    assert "text/plain is not allowed" in error.message and "image/png, image/jpeg" in error.message


def test_corrupt_and_truncated_images_fail_at_decode():
    assert "failed to parse" in bad_input(Image(), msg(b"not an image", "image/png")).message
    whole = png_bytes("RGB", (64, 64))
    assert "failed to parse" in bad_input(Image(), msg(whole[: len(whole) // 2], "image/png")).message


def test_sniffed_format_must_be_allowed():
    # a PNG sent as image/jpeg to a JPEG-only API: refused, not silently opened
    descriptor = Image(allowed_mime_types=["image/jpeg"])
    assert "failed to parse" in bad_input(descriptor, msg(png_bytes(), "image/jpeg")).message


def test_multipart_upload_takes_the_first_allowed_image():
    body, content_type = build_form_data(
        [
            ("note", {"Content-Type": "text/plain"}, b"hi"),
            ("file", {"Content-Type": "image/png", "Content-Disposition": 'form-data; filename="a.png"'}, png_bytes()),
        ]
    )
    assert Image().decode(msg(body, content_type)).size == (4, 3)
    only_text, content_type = build_form_data([("note", {"Content-Type": "text/plain"}, b"hi")])
    assert "no multipart image file" in bad_input(Image(), msg(only_text, content_type)).message


def test_encode_pil_and_ndarray():
    descriptor = Image(mime_type="image/png")
    out = descriptor.encode(PIL.Image.new("RGB", (2, 2)))
    assert out.headers["Content-Type"] == "image/png"
    assert out.headers["Content-Disposition"] == 'attachment; filename="output.png"'
    assert PIL.Image.open(io.BytesIO(out.body)).size == (2, 2)
    jpeg = Image().encode(np.zeros((5, 6, 4), dtype=np.uint8))  # RGBA array -> RGB JPEG
    assert PIL.Image.open(io.BytesIO(jpeg.body)).format == "JPEG"
    with pytest.raises(BadInput):
        descriptor.encode("not an image")


def test_construction_is_validated():
    with pytest.raises(InvalidArgument):
        Image(pilmode="nope")
    with pytest.raises(InvalidArgument):
        Image(mime_type="text/plain")
    with pytest.raises(InvalidArgument):
        Image(allowed_mime_types=["application/json"])


def test_openapi_spec_and_from_sample(tmp_path):
    descriptor = Image(allowed_mime_types=["image/png"])
    assert set(descriptor.openapi_request_body()["content"]) == {"image/png"}
    assert from_spec(descriptor.to_spec()).to_spec() == descriptor.to_spec()
    path = tmp_path / "sample.png"
    path.write_bytes(png_bytes())
    assert Image.from_sample(path).to_spec()["args"]["mime_type"] == "image/png"
    assert Image.from_sample(np.zeros((2, 2), dtype=np.uint8)).to_spec()["args"]["mime_type"] == "image/jpeg"
    with pytest.raises(InvalidArgument):
        Image.from_sample(3)


def test_postscript_is_not_allowed_by_default():
    assert "application/postscript" not in Image().to_spec()["args"].get("allowed_mime_types", [])
    assert "application/postscript" not in Image().openapi_request_body()["content"]
    error = bad_input(Image(), msg(b"%!PS-Adobe-3.0 EPSF-3.0\n", "application/postscript"))
    assert "not allowed" in error.message
