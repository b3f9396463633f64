"""Public record types, as ``bentoml.types`` exported them."""
from __future__ import annotations

from .models.model import ModelSignature, ModelSignatureDict

__all__ = ["ModelSignature", "ModelSignatureDict"]
