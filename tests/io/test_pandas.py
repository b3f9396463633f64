from __future__ import annotations

import pandas as pd
import pytest
from io_helpers import bad_input, msg

from bentolite.exceptions import InvalidArgument, MissingDependencyException
from bentolite.io import PandasDataFrame, PandasSeries, from_spec

RECORDS = '[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]'


def test_json_records_in_and_out():
    descriptor = PandasDataFrame()
    frame = descriptor.decode(msg(RECORDS, "application/json"))
    assert list(frame.columns) == ["a", "b"] and frame["a"].tolist() == [1, 2]
    out = descriptor.encode(frame)
    assert out.headers["content-type"] == "application/json"
    assert out.body == b'[{"a":1,"b":"x"},{"a":2,"b":"y"}]'


def test_format_follows_content_type():
    frame = PandasDataFrame().decode(msg("a,b\n1,x\n2,y\n", "text/csv; charset=utf-8"))
    assert frame.shape == (2, 2)
    csv = PandasDataFrame(default_format="csv")
    assert csv.decode(msg("a\n1\n")).shape == (1, 1)  # no content type -> default format
    assert csv.encode(frame).body == b"a,b\n1,x\n2,y\n"


def test_parquet_without_pyarrow_is_a_clear_400():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        error = bad_input(PandasDataFrame(), msg(b"PAR1", "application/octet-stream"))
        assert "pyarrow" in error.message
        with pytest.raises(MissingDependencyException, match="pyarrow"):
            PandasDataFrame(default_format="parquet")
    else:  # pragma: no cover
        pytest.skip("pyarrow is installed")


@pytest.mark.parametrize("body", [b"{", b"3", b"\xff", b"[1, 2"])
def test_bad_json_is_400(body):
    assert "PandasDataFrame" in bad_input(PandasDataFrame(), msg(body, "application/json")).message


def test_column_names_and_shape():
    named = PandasDataFrame(orient="values", columns=["p", "q"], apply_column_names=True)
    assert list(named.decode(msg("[[1, 2]]")).columns) == ["p", "q"]
    assert "expected 2 columns" in bad_input(named, msg("[[1, 2, 3]]")).message
    shaped = PandasDataFrame(shape=(-1, 2), enforce_shape=True)
    assert "shape" in bad_input(shaped, msg('[{"a": 1}]')).message
    with pytest.raises(InvalidArgument):
        PandasDataFrame(apply_column_names=True)


def test_enforced_dtypes_are_checked_after_parsing():
    descriptor = PandasDataFrame(dtype={"a": "float32"}, enforce_dtype=True)
    assert descriptor.decode(msg('[{"a": 1, "b": 2}]'))["a"].dtype == "float32"
    assert descriptor.decode(msg("a,b\n1,2\n", "text/csv"))["a"].dtype == "float32"
    error = bad_input(descriptor, msg('[{"a": "x"}]'))
    assert error.field == "body.a" and "float32" in error.message


def test_output_must_be_a_dataframe():
    with pytest.raises(InvalidArgument):
        PandasDataFrame().encode([1, 2])


def test_from_sample_and_spec():
    descriptor = PandasDataFrame.from_sample(pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}))
    args = descriptor.to_spec()["args"]
    assert args["shape"] == [2, 2] and args["columns"] == ["a", "b"]
    assert args["dtype"] == {"a": "int64", "b": "float64"}
    assert from_spec(descriptor.to_spec()).to_spec() == descriptor.to_spec()


def test_series_round_trip_and_rules():
    series = PandasSeries()
    decoded = series.decode(msg("[1, 2, 3]"))
    assert decoded.tolist() == [1, 2, 3]
    assert series.encode(decoded).body == b"[1,2,3]"
    assert PandasSeries(dtype="float32").decode(msg("[1, 2]")).dtype == "float32"
    enforced = PandasSeries(dtype="int64", enforce_dtype=True)
    assert "dtype" in bad_input(enforced, msg('["a", "b"]')).message
    assert "PandasSeries" in bad_input(series, msg("{")).message
    with pytest.raises(InvalidArgument):
        series.encode(pd.DataFrame())
    assert PandasSeries.from_sample(pd.Series([1.0])).to_spec()["args"]["dtype"] == "float64"
