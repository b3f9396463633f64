"""Property tests: encode then decode gives the value back; no bytes make decode raise non-BadInput."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from bentolite.exceptions import BadInput
from bentolite.io import (
    JSON,
    File,
    HTTPMessage,
    Image,
    Multipart,
    NumpyNdarray,
    PandasDataFrame,
    PandasSeries,
    Text,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@FAST
@given(json_values)
def test_json_round_trip(value):
    descriptor = JSON()
    assert descriptor.decode(descriptor.encode(value)) == value


@FAST
@given(st.text())
def test_text_round_trip(value):
    assert Text().decode(Text().encode(value)) == value


@FAST
@given(
    npst.arrays(
        dtype=st.sampled_from([np.int64, np.int32, np.float64, np.float32, np.bool_]),
        shape=npst.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
        elements={"allow_nan": False, "allow_infinity": False},
    )
)
def test_ndarray_round_trip(arr):
    descriptor = NumpyNdarray.from_sample(arr)
    decoded = descriptor.decode(descriptor.encode(arr))
    assert decoded.dtype == arr.dtype and decoded.shape == arr.shape
    np.testing.assert_array_equal(decoded, arr)


@FAST
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-(2**53), max_value=2**53),
            st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
            st.text(alphabet="abcxyz ", min_size=1, max_size=6).map(lambda s: "s" + s),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_dataframe_round_trip(rows):
    frame = pd.DataFrame(rows, columns=["i", "f", "s"])
    descriptor = PandasDataFrame()
    decoded = descriptor.decode(descriptor.encode(frame))
    pd.testing.assert_frame_equal(decoded, frame, check_dtype=False, check_exact=False, rtol=1e-12)


DESCRIPTORS = [
    Text(),
    JSON(),
    NumpyNdarray(dtype="float32", shape=(-1, 2), enforce_shape=True, enforce_dtype=True),
    NumpyNdarray(),
    PandasDataFrame(),
    PandasDataFrame(orient="values", columns=["a"], apply_column_names=True),
    PandasSeries(dtype="int64", enforce_dtype=True),
    Image(),
    File(mime_type="image/png"),
    Multipart(a=JSON(), b=Image()),
]
CONTENT_TYPES = [
    None,
    "application/json",
    "text/csv",
    "image/png",
    "application/octet-stream",
    "multipart/form-data; boundary=b",
    "multipart/form-data",
]
noisy_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: repr(v).encode()),
    st.lists(st.sampled_from([b"--b", b"\r\n", b"Content-Type: image/png", b'name="a"', b"[1,2]", b"\x89PNG"]))
    .map(b"".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DESCRIPTORS), st.sampled_from(CONTENT_TYPES), noisy_bodies)
def test_random_bytes_give_bad_input_or_a_value(descriptor, content_type, body):
    headers = {} if content_type is None else {"Content-Type": content_type}
    try:
        descriptor.decode(HTTPMessage(body, headers))
    except BadInput as exc:
        assert exc.message and exc.field
        assert exc.__cause__ is None, f"unanticipated error: {exc.__cause__!r}"
