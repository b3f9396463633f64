"""IO descriptors (``bentoml.io`` names): parse requests into Python objects and render responses."""
from __future__ import annotations

from .base import HTTPMessage, IODescriptor, from_spec
from .file import File, FileLike
from .image import Image
from .json import JSON, DefaultJsonEncoder
from .multipart import Multipart
from .numpy import NumpyNdarray
from .pandas import PandasDataFrame, PandasSeries
from .text import Text

__all__ = [
    "HTTPMessage",
    "IODescriptor",
    "from_spec",
    "File",
    "FileLike",
    "Image",
    "JSON",
    "DefaultJsonEncoder",
    "Multipart",
    "NumpyNdarray",
    "PandasDataFrame",
    "PandasSeries",
    "Text",
]
