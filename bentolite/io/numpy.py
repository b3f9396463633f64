"""``NumpyNdarray``: a JSON (nested list) body as a ``numpy.ndarray``, with dtype/shape rules."""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Sequence

from ..exceptions import BadInput, InvalidArgument, UnprocessableEntity
from ._fastjson import FAST_JSON_BYTES, float_array
from .base import HTTPMessage, IODescriptor
from .json import parse_json

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["NumpyNdarray"]

logger = logging.getLogger(__name__)


def _cast(arr: np.ndarray[Any, Any], dtype: Any, field: str) -> np.ndarray[Any, Any]:
    """Cast within the same kind, refusing values the target dtype cannot hold."""
    import numpy as np

    try:
        with np.errstate(over="raise", invalid="raise"):
            return arr.astype(dtype, casting="same_kind")
    except FloatingPointError:
        raise BadInput(f"NumpyNdarray: a value is out of range for dtype {dtype}", field=field) from None


def _shape_matches(expected: tuple[int, ...], received: tuple[int, ...]) -> bool:
    if len(expected) != len(received):
        return False
    return all(e == -1 or e == r for e, r in zip(expected, received))


def _json_type(dtype: np.dtype[Any] | None) -> str:
    if dtype is None:
        return "number"
    if dtype.kind in "fc":
        return "number"
    if dtype.kind in "iu":
        return "integer"
    if dtype.kind == "b":
        return "boolean"
    if dtype.kind in "US":
        return "string"
    return "number"


class NumpyNdarray(IODescriptor["np.ndarray[Any, Any]"]):
    """An ndarray sent as JSON nested lists; dtype is cast when safe, checked when enforced."""

    descriptor_id = "bentoml.io.NumpyNdarray"
    _mime_type = "application/json"

    def __init__(
        self,
        dtype: str | np.dtype[Any] | None = None,
        enforce_dtype: bool = False,
        shape: Sequence[int] | None = None,
        enforce_shape: bool = False,
    ) -> None:
        import numpy as np

        if dtype is not None:
            try:
                dtype = np.dtype(dtype)
            except TypeError as exc:
                raise UnprocessableEntity(f"NumpyNdarray: invalid dtype {dtype!r}: {exc}") from None
        if enforce_dtype and dtype is None:
            raise InvalidArgument("NumpyNdarray: enforce_dtype=True needs a dtype")
        if shape is not None:
            shape = tuple(int(d) for d in shape)
        if enforce_shape and shape is None:
            raise InvalidArgument("NumpyNdarray: enforce_shape=True needs a shape")
        self._dtype: np.dtype[Any] | None = dtype
        self._enforce_dtype = enforce_dtype
        self._shape: tuple[int, ...] | None = shape
        self._enforce_shape = enforce_shape

    def input_type(self) -> Any:
        import numpy as np

        return np.ndarray

    def _spec_args(self) -> dict[str, Any]:
        return {
            "dtype": None if self._dtype is None else str(self._dtype),
            "shape": None if self._shape is None else list(self._shape),
            "enforce_dtype": self._enforce_dtype,
            "enforce_shape": self._enforce_shape,
        }

    def validate_array(self, arr: np.ndarray[Any, Any], field: str = "body") -> np.ndarray[Any, Any]:
        """Apply the dtype and shape rules (cast or reshape when allowed, else BadInput)."""
        import numpy as np

        if self._dtype is not None and arr.dtype != self._dtype:
            if np.can_cast(arr.dtype, self._dtype, casting="same_kind"):
                arr = _cast(arr, self._dtype, field)
            else:
                message = (
                    f'NumpyNdarray: Expecting ndarray of dtype "{self._dtype}", '
                    f'but "{arr.dtype}" was received.'
                )
                if self._enforce_dtype:
                    raise BadInput(message, field=field)
                logger.debug(message)
        if self._shape is not None and not _shape_matches(self._shape, arr.shape):
            message = (
                f'NumpyNdarray: Expecting ndarray of shape "{self._shape}", '
                f'but "{arr.shape}" was received.'
            )
            if self._enforce_shape:
                raise BadInput(message, field=field)
            try:
                arr = arr.reshape(self._shape)
            except ValueError:
                logger.debug("%s (could not reshape)", message)
        return arr

    def _decode(self, msg: HTTPMessage, field: str) -> np.ndarray[Any, Any]:
        import numpy as np

        body = msg.body
        if (self._dtype is not None and self._dtype.kind == "f"
                and len(body) >= FAST_JSON_BYTES and isinstance(body, bytes)):
            arr = float_array(body)
            if arr is not None:  # simdjson refuses NaN, Infinity and out-of-range numbers
                arr = self.validate_array(arr, field)
                return arr if arr.flags.writeable else arr.copy()
        # numbers are checked on the array (one vectorised isfinite), not one by one while parsing
        obj = parse_json(body, field, "NumpyNdarray: invalid JSON", check_floats=False)
        # Enforced: parse as sent so validate_array can refuse lossy casts (1.5 -> int).
        # Not enforced: convert straight to dtype, as v1 did.
        try:
            with np.errstate(over="raise", invalid="raise"):
                arr = np.array(obj, dtype=None if self._enforce_dtype else self._dtype)
        except FloatingPointError:
            raise BadInput(f"NumpyNdarray: a value is out of range for dtype {self._dtype}", field=field) from None
        except (ValueError, TypeError, OverflowError):
            try:
                arr = np.array(obj)
            except ValueError as exc:
                raise BadInput(
                    f"NumpyNdarray: input is not a rectangular array (rows of different lengths?): {exc}",
                    field=field,
                ) from None
        if arr.dtype == object and (self._dtype is None or self._dtype != object):
            raise BadInput(
                "NumpyNdarray: input must be numbers, booleans or strings in equal-length nested lists",
                field=field,
            )
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():  # 1e400 parses as inf
            dtype = arr.dtype if self._dtype is None else self._dtype
            raise BadInput(f"NumpyNdarray: a value is out of range for dtype {dtype}", field=field)
        return self.validate_array(arr, field)

    def encode(self, obj: Any, field: str = "output") -> HTTPMessage:
        import numpy as np

        arr = self.validate_array(np.asarray(obj), field)
        return HTTPMessage(json.dumps(arr.tolist()).encode("utf-8"), {"Content-Type": self._mime_type})

    def openapi_schema(self) -> dict[str, Any]:
        items: dict[str, Any] = {"type": _json_type(self._dtype)}
        if self._shape is not None and len(self._shape) > 1:
            for _ in range(len(self._shape) - 1):
                items = {"type": "array", "items": items}
        return {"type": "array", "items": items, "nullable": True}

    @classmethod
    def from_sample(cls, sample: Any, **kwargs: Any) -> NumpyNdarray:
        import numpy as np

        arr = np.asarray(sample)
        kwargs.setdefault("dtype", arr.dtype)
        kwargs.setdefault("shape", arr.shape)
        descriptor = cls(**kwargs)
        descriptor._sample = arr
        return descriptor

    def openapi_example(self) -> Any | None:
        return None if self._sample is None else self._sample.tolist()
