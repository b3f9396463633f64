"""``PandasDataFrame`` and ``PandasSeries``: tabular bodies (JSON, CSV, parquet) as pandas objects."""
from __future__ import annotations

import importlib.util
import io
import json
import logging
from typing import TYPE_CHECKING, Any, Sequence

from ..exceptions import BadInput, InvalidArgument, MissingDependencyException
from .base import HTTPMessage, IODescriptor, join_field

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PandasDataFrame", "PandasSeries"]

logger = logging.getLogger(__name__)

_FORMAT_MIME = {"json": "application/json", "parquet": "application/octet-stream", "csv": "text/csv"}
_MIME_FORMAT = {mime: fmt for fmt, mime in _FORMAT_MIME.items()}
_DATAFRAME_ORIENTS = ("split", "records", "index", "columns", "values", "table")
_SERIES_ORIENTS = ("split", "records", "index", "table")
_JSON_DOUBLE_PRECISION = 15  # pandas' maximum; its default (10) loses digits in a round trip


def _parquet_engine() -> str | None:
    for module in ("pyarrow", "fastparquet"):
        if importlib.util.find_spec(module) is not None:
            return module
    return None


def _shape_matches(expected: tuple[int, ...], received: tuple[int, ...]) -> bool:
    if len(expected) != len(received):
        return False
    return all(e == -1 or e == r for e, r in zip(expected, received))


def _normalise_shape(shape: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if shape is None else tuple(int(d) for d in shape)


def _json_text(body: bytes) -> io.StringIO:
    return io.StringIO(body.decode("utf-8"))


class PandasDataFrame(IODescriptor["pd.DataFrame"]):
    """A DataFrame; input format follows the request Content-Type, output uses ``default_format``."""

    descriptor_id = "bentoml.io.PandasDataFrame"

    def __init__(
        self,
        orient: str = "records",
        columns: Sequence[str] | None = None,
        apply_column_names: bool = False,
        dtype: bool | str | dict[str, Any] | None = None,
        enforce_dtype: bool = False,
        shape: Sequence[int] | None = None,
        enforce_shape: bool = False,
        default_format: str = "json",
    ) -> None:
        if orient not in _DATAFRAME_ORIENTS:
            raise InvalidArgument(f"PandasDataFrame: orient must be one of {', '.join(_DATAFRAME_ORIENTS)}")
        if default_format not in _FORMAT_MIME:
            raise InvalidArgument(f"PandasDataFrame: default_format must be one of {', '.join(_FORMAT_MIME)}")
        import pandas  # noqa: F401  (import now, not on the event loop at the first request)

        self._parquet_engine = _parquet_engine()
        if default_format == "parquet" and self._parquet_engine is None:
            raise MissingDependencyException(
                "PandasDataFrame(default_format='parquet') needs 'pyarrow' (pip install pyarrow)"
            )
        if apply_column_names and not columns:
            raise InvalidArgument("PandasDataFrame: apply_column_names=True needs columns")
        if enforce_dtype and dtype is None:
            raise InvalidArgument("PandasDataFrame: enforce_dtype=True needs a dtype")
        if enforce_shape and shape is None:
            raise InvalidArgument("PandasDataFrame: enforce_shape=True needs a shape")
        self._orient = orient
        self._columns = None if columns is None else [str(c) for c in columns]
        self._apply_column_names = apply_column_names
        self._dtype = {str(k): str(v) for k, v in dtype.items()} if isinstance(dtype, dict) else dtype
        self._enforce_dtype = enforce_dtype
        self._shape = _normalise_shape(shape)
        self._enforce_shape = enforce_shape
        self._default_format = default_format
        self._mime_type = _FORMAT_MIME[default_format]

    def input_type(self) -> Any:
        import pandas as pd

        return pd.DataFrame

    def _spec_args(self) -> dict[str, Any]:
        return {
            "orient": self._orient,
            "columns": self._columns,
            "apply_column_names": self._apply_column_names,
            "dtype": self._dtype,
            "enforce_dtype": self._enforce_dtype,
            "shape": None if self._shape is None else list(self._shape),
            "enforce_shape": self._enforce_shape,
            "default_format": self._default_format,
        }

    def _decode(self, msg: HTTPMessage, field: str) -> pd.DataFrame:
        import pandas as pd

        fmt = _MIME_FORMAT.get(msg.content_type or "", self._default_format)
        dtype = self._dtype if self._enforce_dtype else True
        try:
            if fmt == "json":
                frame = pd.read_json(_json_text(msg.body), dtype=dtype, orient=self._orient)
            elif fmt == "csv":
                frame = pd.read_csv(io.BytesIO(msg.body), dtype=dtype if isinstance(dtype, (dict, str)) else None)
            else:
                if self._parquet_engine is None:
                    raise BadInput(
                        "PandasDataFrame: parquet input (application/octet-stream) needs 'pyarrow', which this "
                        "server does not have; send application/json or text/csv instead",
                        field=field,
                    )
                frame = pd.read_parquet(io.BytesIO(msg.body))  # pragma: no cover  (no pyarrow in CI)
        except BadInput:
            raise
        except Exception as exc:
            raise BadInput(f"PandasDataFrame: cannot parse {fmt} input: {exc}", field=field) from None
        if not isinstance(frame, pd.DataFrame):
            raise BadInput(f"PandasDataFrame: {fmt} input is not a table", field=field)
        frame = self.validate_dataframe(frame, field)
        if self._enforce_dtype:
            frame = self._enforce_column_dtypes(frame, field)
        return frame

    def _enforce_column_dtypes(self, frame: pd.DataFrame, field: str) -> pd.DataFrame:
        # pandas leaves a column as it was when it cannot convert it: check after parsing
        if isinstance(self._dtype, dict):
            wanted = {col: dtype for col, dtype in self._dtype.items() if col in frame.columns}
        elif isinstance(self._dtype, str):
            wanted = {col: self._dtype for col in frame.columns}
        else:
            return frame
        for col, dtype in wanted.items():
            if str(frame[col].dtype) == dtype:
                continue
            try:
                frame[col] = frame[col].astype(dtype)
            except (TypeError, ValueError) as exc:
                raise BadInput(
                    f'PandasDataFrame: column "{col}" must be {dtype}, got {frame[col].dtype}: {exc}',
                    field=join_field(field, str(col)),
                ) from None
        return frame

    def validate_dataframe(self, frame: pd.DataFrame, field: str = "body") -> pd.DataFrame:
        """Apply column names and the shape rule (BadInput on mismatch)."""
        if self._apply_column_names and self._columns is not None:
            if len(self._columns) != len(frame.columns):
                raise BadInput(
                    f"PandasDataFrame: expected {len(self._columns)} columns ({', '.join(self._columns)}), "
                    f"got {len(frame.columns)}",
                    field=field,
                )
            frame.columns = self._columns
        if self._shape is not None and not _shape_matches(self._shape, frame.shape):
            message = f"PandasDataFrame: expecting shape {self._shape}, but {frame.shape} was received"
            if self._enforce_shape:
                raise BadInput(message, field=field)
            logger.debug(message)
        return frame

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        import pandas as pd

        if not isinstance(obj, pd.DataFrame):
            raise InvalidArgument(f"PandasDataFrame: output must be a DataFrame, got {type(obj).__name__}", field=field)
        if self._default_format == "json":
            body = obj.to_json(orient=self._orient, double_precision=_JSON_DOUBLE_PRECISION).encode("utf-8")
        elif self._default_format == "csv":
            body = obj.to_csv(index=False).encode("utf-8")
        else:  # pragma: no cover  (no pyarrow in CI)
            buffer = io.BytesIO()
            obj.to_parquet(buffer)
            body = buffer.getvalue()
        return HTTPMessage(body, {"Content-Type": self._mime_type})

    def openapi_schema(self) -> dict[str, Any]:
        if self._orient == "records" and self._columns:
            return {
                "type": "array",
                "items": {"type": "object", "properties": {c: {} for c in self._columns}},
            }
        return {"type": "object"}

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> PandasDataFrame:
        import pandas as pd

        if not isinstance(sample, pd.DataFrame):
            sample = pd.DataFrame(sample)
        kwargs.setdefault("shape", sample.shape)
        kwargs.setdefault("columns", [str(c) for c in sample.columns])
        kwargs.setdefault("dtype", {str(c): str(t) for c, t in sample.dtypes.items()})
        descriptor = cls(**kwargs)
        descriptor._sample = sample
        return descriptor

    def openapi_example(self) -> Any | None:
        if self._sample is None or self._default_format != "json":
            return None
        return json.loads(self._sample.to_json(orient=self._orient))


class PandasSeries(IODescriptor["pd.Series"]):
    """A Series sent as JSON."""

    descriptor_id = "bentoml.io.PandasSeries"
    _mime_type = "application/json"

    def __init__(
        self,
        orient: str = "records",
        dtype: bool | str | None = None,
        enforce_dtype: bool = False,
        shape: Sequence[int] | None = None,
        enforce_shape: bool = False,
    ) -> None:
        import pandas  # noqa: F401  (import now, not on the event loop at the first request)

        if orient not in _SERIES_ORIENTS:
            raise InvalidArgument(f"PandasSeries: orient must be one of {', '.join(_SERIES_ORIENTS)}")
        if enforce_dtype and dtype is None:
            raise InvalidArgument("PandasSeries: enforce_dtype=True needs a dtype")
        if enforce_shape and shape is None:
            raise InvalidArgument("PandasSeries: enforce_shape=True needs a shape")
        self._orient = orient
        self._dtype = str(dtype) if dtype is not None and not isinstance(dtype, bool) else dtype
        self._enforce_dtype = enforce_dtype
        self._shape = _normalise_shape(shape)
        self._enforce_shape = enforce_shape

    def input_type(self) -> Any:
        import pandas as pd

        return pd.Series

    def _spec_args(self) -> dict[str, Any]:
        return {
            "orient": self._orient,
            "dtype": self._dtype,
            "enforce_dtype": self._enforce_dtype,
            "shape": None if self._shape is None else list(self._shape),
            "enforce_shape": self._enforce_shape,
        }

    def _decode(self, msg: HTTPMessage, field: str) -> pd.Series:
        import pandas as pd

        dtype = self._dtype if self._enforce_dtype else True
        try:
            series = pd.read_json(_json_text(msg.body), typ="series", orient=self._orient, dtype=dtype)
        except Exception as exc:
            raise BadInput(f"PandasSeries: cannot parse JSON input: {exc}", field=field) from None
        if not isinstance(series, pd.Series):
            raise BadInput("PandasSeries: input is not a series", field=field)
        return self.validate_series(series, field)

    def validate_series(self, series: pd.Series, field: str = "body") -> pd.Series:
        """Apply the dtype and shape rules (cast when safe, BadInput when enforced)."""
        import numpy as np

        if isinstance(self._dtype, str) and str(series.dtype) != self._dtype:
            try:
                wanted = np.dtype(self._dtype)
                castable = np.can_cast(series.dtype, wanted, casting="same_kind")
            except TypeError:
                castable = False
            if castable:
                series = series.astype(wanted)
            else:
                message = f'PandasSeries: expecting dtype "{self._dtype}", but "{series.dtype}" was received'
                if self._enforce_dtype:
                    raise BadInput(message, field=field)
                logger.debug(message)
        if self._shape is not None and not _shape_matches(self._shape, series.shape):
            message = f"PandasSeries: expecting shape {self._shape}, but {series.shape} was received"
            if self._enforce_shape:
                raise BadInput(message, field=field)
            logger.debug(message)
        return series

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        import pandas as pd

        if not isinstance(obj, pd.Series):
            raise InvalidArgument(f"PandasSeries: output must be a Series, got {type(obj).__name__}", field=field)
        series = self.validate_series(obj, field)
        body = series.to_json(orient=self._orient, double_precision=_JSON_DOUBLE_PRECISION)
        return HTTPMessage(body.encode("utf-8"), {"Content-Type": self._mime_type})

    def openapi_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {}} if self._orient == "records" else {"type": "object"}

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> PandasSeries:
        import pandas as pd

        if not isinstance(sample, pd.Series):
            sample = pd.Series(sample)
        kwargs.setdefault("shape", sample.shape)
        kwargs.setdefault("dtype", str(sample.dtype))
        descriptor = cls(**kwargs)
        descriptor._sample = sample
        return descriptor

    def openapi_example(self) -> Any | None:
        return None if self._sample is None else json.loads(self._sample.to_json(orient=self._orient))
