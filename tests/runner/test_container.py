"""Batch containers and the payload codec."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bentolite.exceptions import BentoMLException
from bentolite.runner.container import (
    batch_size_of, concat_batches, decode_payload, encode_payload, split_batch,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=8), st.sampled_from([0, 1]))
def test_numpy_concat_then_split_round_trips(sizes: list[int], dim: int) -> None:
    parts = [np.random.rand(n, 3) if dim == 0 else np.random.rand(3, n) for n in sizes]
    batch = concat_batches(parts, dim)
    assert batch_size_of(batch, dim) == sum(sizes)
    for got, want in zip(split_batch(batch, sizes, dim, "m"), parts):
        np.testing.assert_array_equal(got, want)


def test_lists_pandas_and_tuples_split_per_request() -> None:
    import pandas as pd

    frames = [pd.DataFrame({"a": [i] * (i + 1)}) for i in range(3)]
    joined = concat_batches(frames, 0)
    assert len(joined) == 6
    for got, want in zip(split_batch(joined, [1, 2, 3], 0, "m"), frames):
        pd.testing.assert_frame_equal(got, want)
    series = concat_batches([pd.Series([1, 2]), pd.Series([3])], 0)
    assert [s.tolist() for s in split_batch(series, [2, 1], 0, "m")] == [[1, 2], [3]]
    out = split_batch(([1, 2, 3], np.arange(3)), [2, 1], 0, "m")
    assert out[0][0] == [1, 2] and out[1][1].tolist() == [2]
    out = split_batch({"a": [1, 2, 3]}, [1, 2], 0, "m")
    assert out == [{"a": [1]}, {"a": [2, 3]}]


def test_torch_tensors_and_pil_lists() -> None:
    import torch
    from PIL import Image

    t = concat_batches([torch.ones(2, 2), torch.zeros(1, 2)], 0)
    assert [x.shape[0] for x in split_batch(t, [2, 1], 0, "m")] == [2, 1]
    images = [Image.new("RGB", (2, 2)), Image.new("RGB", (3, 3))]
    joined = concat_batches([images[:1], images[1:]], 0)
    assert [len(x) for x in split_batch(joined, [1, 1], 0, "m")] == [1, 1]


def test_wrong_result_length_names_method_and_sizes() -> None:
    with pytest.raises(BentoMLException) as info:
        split_batch(np.zeros((4, 1)), [2, 3], 0, "predict")
    message = str(info.value)
    assert "'predict'" in message and "returned 4 items" in message and "expected 5" in message
    with pytest.raises(BentoMLException, match="must return a list"):
        split_batch(42, [1], 0, "predict")


def test_codec_round_trips_without_copying_arrays() -> None:
    import pandas as pd
    from PIL import Image

    array = np.arange(100_000, dtype=np.float32).reshape(1000, 100)
    parts = encode_payload({"x": array, "df": pd.DataFrame({"a": [1]}),
                            "img": Image.new("L", (4, 4), 7), "s": "text"})
    assert len(parts) >= 2  # the array travels out of band
    assert any(memoryview(p).nbytes == array.nbytes for p in parts[1:])
    received = [bytearray(p) for p in parts]  # what the socket hands the other side
    value = decode_payload(received)
    np.testing.assert_array_equal(value["x"], array)
    assert value["x"].flags.writeable
    assert value["df"]["a"].tolist() == [1]
    assert value["img"].getpixel((0, 0)) == 7 and value["s"] == "text"


def test_array_fast_path_round_trips() -> None:
    for array in (np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros((0, 2)),
                  np.array([b"ab", b"c"]), np.arange(5, dtype=">i8"), np.array(3.0)):
        for obj in (array, ((array,), {})):
            parts = encode_payload(obj)
            got = decode_payload([bytearray(p) for p in parts])
            value = got if isinstance(obj, np.ndarray) else got[0][0]
            assert value.dtype == array.dtype and value.shape == array.shape
            np.testing.assert_array_equal(value, array)
    strided = np.arange(10)[::2]
    np.testing.assert_array_equal(decode_payload(encode_payload(strided)), strided)
    objects = np.array([{"a": 1}, None], dtype=object)
    assert decode_payload(encode_payload(objects))[0] == {"a": 1}
