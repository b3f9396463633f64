"""Annotations that refine a new-style API's parameter types (BentoML 1.2+'s names).

    from typing import Annotated
    import numpy as np
    from bentolite.validators import DType, Shape

    @bentoml.api
    def predict(self, rows: Annotated[np.ndarray, Shape((-1, 4)), DType("float32")]) -> ...

``Shape`` (``-1`` matches any size) and ``DType`` check and convert arrays; ``ContentType``
names a file's or an image's media type; ``DataframeSchema`` names a DataFrame's layout.
"""
from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Shape", "DType", "ContentType", "DataframeSchema"]


@attrs.frozen
class Shape:
    """The array's shape; ``-1`` in a dimension accepts any size."""

    dimensions: tuple[int, ...] = attrs.field(converter=tuple)


@attrs.frozen
class DType:
    """The array's dtype (a numpy dtype name such as ``"float32"``)."""

    dtype: str


@attrs.frozen
class ContentType:
    """The media type of a file or image parameter or return value."""

    content_type: str


@attrs.frozen
class DataframeSchema:
    """How a DataFrame travels as JSON: ``orient`` (``"records"`` or ``"columns"``) and,
    optionally, its ``columns``."""

    orient: str = "records"
    columns: Any = None
