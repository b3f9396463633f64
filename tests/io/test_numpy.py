from __future__ import annotations

import numpy as np
import pytest
from io_helpers import bad_input, msg

from bentolite.exceptions import BadInput, InvalidArgument, UnprocessableEntity
from bentolite.io import NumpyNdarray, from_spec


def test_decodes_nested_lists():
    arr = NumpyNdarray().decode(msg("[[1, 2], [3, 4]]"))
    assert arr.shape == (2, 2) and arr.dtype.kind == "i"


def test_casts_same_kind_and_refuses_when_enforced():
    arr = NumpyNdarray(dtype="float32").decode(msg("[1.5, 2]"))
    assert arr.dtype == np.float32
    error = bad_input(NumpyNdarray(dtype="int32", enforce_dtype=True), msg("[1.5, 2]"))
    assert 'Expecting ndarray of dtype "int32", but "float64" was received' in error.message
    # not enforced: converted straight to the dtype, as v1 did
    assert NumpyNdarray(dtype="int32").decode(msg("[1.5]")).tolist() == [1]
    # strings that do not fit the dtype pass through unless enforced
    assert NumpyNdarray(dtype="float32").decode(msg('["a"]')).dtype.kind == "U"
    assert "float32" in bad_input(NumpyNdarray(dtype="float32", enforce_dtype=True), msg('["a"]')).message


def test_shape_rules():
    enforced = NumpyNdarray(shape=(-1, 2), enforce_shape=True)
    assert enforced.decode(msg("[[1,2],[3,4],[5,6]]")).shape == (3, 2)
    error = bad_input(enforced, msg("[1,2,3]"))
    assert "(-1, 2)" in error.message and "(3,)" in error.message
    assert NumpyNdarray(shape=(2, 2)).decode(msg("[1,2,3,4]")).shape == (2, 2)  # reshaped
    assert NumpyNdarray(shape=(2, 2)).decode(msg("[1,2,3]")).shape == (3,)  # left alone


@pytest.mark.parametrize(
    "body, words",
    [
        (b"[1, 2", "invalid JSON"),
        (b"[[1, 2], [3]]", "rectangular"),
        (b'{"a": 1}', "numbers"),
        (b"[1, null, {}]", "numbers"),
        (b"[\xff]", "UTF-8"),
    ],
)
def test_bad_bodies_are_400(body, words):
    assert words in bad_input(NumpyNdarray(), msg(body)).message


def test_encode_validates_and_uses_default_separators():
    out = NumpyNdarray(dtype="int64").encode(np.array([0, 1]))
    assert out.body == b"[0, 1]"
    with pytest.raises(BadInput):
        NumpyNdarray(shape=(3,), enforce_shape=True).encode(np.zeros(2))


def test_construction_errors():
    with pytest.raises(UnprocessableEntity):
        NumpyNdarray(dtype="not-a-dtype")
    with pytest.raises(InvalidArgument):
        NumpyNdarray(enforce_shape=True)


def test_schema_spec_and_sample():
    descriptor = NumpyNdarray.from_sample(np.zeros((2, 3), dtype="float32"))
    assert descriptor.to_spec() == {
        "id": "bentoml.io.NumpyNdarray",
        "args": {"dtype": "float32", "shape": [2, 3], "enforce_dtype": False, "enforce_shape": False},
    }
    assert descriptor.openapi_schema() == {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}},
        "nullable": True,
    }
    assert from_spec(descriptor.to_spec()).to_spec() == descriptor.to_spec()
    assert NumpyNdarray(dtype="int8").openapi_schema()["items"] == {"type": "integer"}


def test_value_out_of_range_for_dtype_is_bad_input():
    from bentolite.exceptions import BadInput
    from bentolite.io import NumpyNdarray
    from bentolite.io.base import HTTPMessage

    for desc in (NumpyNdarray(dtype="float32"), NumpyNdarray(dtype="float32", enforce_dtype=True)):
        try:
            desc.decode(HTTPMessage(b"[1.0, 10e38]", {"content-type": "application/json"}))
        except BadInput as e:
            assert "out of range" in e.message and "float32" in e.message
        else:
            raise AssertionError("expected BadInput")


def _big(text: str) -> bytes:
    """``text`` padded with spaces past the size where simdjson reads float arrays."""
    from bentolite.io._fastjson import FAST_JSON_BYTES

    return text.encode() + b" " * FAST_JSON_BYTES


def test_large_float_arrays_are_read_by_simdjson_as_the_standard_path_reads_them(monkeypatch):
    from bentolite.io import _fastjson, numpy as numpy_io

    rng = np.random.default_rng(0)
    tensor = rng.standard_normal((2, 3, 40, 40)).astype(np.float32)
    body = str(tensor.tolist()).encode()  # Python's list repr is JSON for floats
    assert len(body) > _fastjson.FAST_JSON_BYTES
    assert _fastjson.float_array(body).shape == (2, 3, 40, 40)  # the fast path took it
    descriptor = NumpyNdarray(dtype="float32", shape=(2, 3, 40, 40), enforce_shape=True)
    fast = descriptor.decode(msg(body))
    ints_body = _big("[[1, 2], [3, 4]]")
    monkeypatch.setattr(numpy_io, "FAST_JSON_BYTES", 1 << 40)
    standard = descriptor.decode(msg(body))
    assert fast.dtype == standard.dtype == np.float32 and fast.flags.writeable
    np.testing.assert_array_equal(fast, standard)
    np.testing.assert_array_equal(fast, tensor)
    ints = NumpyNdarray(dtype="int64").decode(msg(ints_body))
    assert ints.dtype == np.int64 and ints.tolist() == [[1, 2], [3, 4]]  # ints: never the fast path


@pytest.mark.parametrize("text, words", [
    ("[[1, 2], [3]]", "rectangular"),
    ("[[1, [2]], [3, 4]]", "rectangular"),  # a list where a number belongs
    ("[[1, [2, 3]], [[], 4]]", "rectangular"),  # ... that flattens to the right count
    ("[[1, 2], 3]", "rectangular"),
    ("[[1, {}], [3, 4]]", "numbers"),
    ("[[1e400, 2]]", "out of range"),
    ("[[NaN, 2]]", "invalid JSON"),
    ("[[1, 2], [3, 4]", "invalid JSON"),
])
def test_large_bodies_the_fast_path_refuses_get_the_standard_400(text, words):
    from bentolite.io._fastjson import float_array

    body = _big(text)
    assert float_array(body) is None
    assert words in bad_input(NumpyNdarray(dtype="float32"), msg(body)).message


def test_the_kept_parser_recovers_when_a_value_of_its_last_document_is_still_alive():
    from bentolite.io import _fastjson

    body = _big("[[1.5, 2.5], [3.5, 4.5]]")
    with _fastjson._parsing() as (_, parser):
        alive = parser.parse(body)[0]  # outlives the with: the parser cannot parse again
    assert _fastjson.float_array(body) is None  # refused: the standard path reads it
    assert NumpyNdarray(dtype="float32").decode(msg(body)).tolist() == [[1.5, 2.5], [3.5, 4.5]]
    assert _fastjson.float_array(body).tolist() == [[1.5, 2.5], [3.5, 4.5]]  # a new parser
    del alive


@pytest.mark.timeout(30)  # waiting for the holder (60 s) fails the test
def test_a_body_does_not_wait_for_the_kept_parser_while_another_thread_holds_it():
    import threading

    from bentolite.io import _fastjson

    body = _big("[[1.5, 2.5], [3.5, 4.5]]")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _fastjson._parsing():
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        assert _fastjson.float_array(body).tolist() == [[1.5, 2.5], [3.5, 4.5]]  # no wait
    finally:
        release.set()
        holder.join()
