"""``Tag``: the ``name:version`` identity of models, runners and services."""
from __future__ import annotations

import base64
import logging
import re
import uuid
from typing import Union

import attrs

from .exceptions import BentoMLException

__all__ = ["Tag", "TagLike", "validate_tag_part", "normalize_name"]

logger = logging.getLogger(__name__)

_PART = re.compile(r"[a-z0-9]([-._a-z0-9]*[a-z0-9])?")
MAX_PART_LEN = 63
TAG_RULE = (
    "a tag part is 1-63 characters of lowercase letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit"
)


def validate_tag_part(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid tag part, else raise ValueError stating the rule."""
    if not isinstance(value, str):
        raise ValueError(f"tag {what} must be a string, got {type(value).__name__}")
    if len(value) > MAX_PART_LEN:
        raise ValueError(f"{value!r} is not a valid tag {what}: {len(value)} characters; {TAG_RULE}")
    if not _PART.fullmatch(value):  # not match(): '$' would accept a trailing newline
        raise ValueError(f"{value!r} is not a valid tag {what}: {TAG_RULE}")
    return value


def normalize_name(value: str, what: str = "name") -> str:
    """Lower-case (with a warning, as BentoML does) and validate a tag part."""
    lowered = value.lower() if isinstance(value, str) else value
    if lowered != value:
        logger.warning("Converting %s %r to lowercase: %r", what, value, lowered)
    return validate_tag_part(lowered, what)


@attrs.frozen(order=False, repr=False, init=False)
class Tag:
    """A model, runner or service identity: ``name`` and an optional ``version``."""

    name: str
    version: str | None

    def __init__(self, name: str, version: str | None = None) -> None:
        object.__setattr__(self, "name", normalize_name(name, "name"))
        if version is not None:
            version = normalize_name(version, "version")
        object.__setattr__(self, "version", version)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"

    def __repr__(self) -> str:
        return f"Tag(name={self.name!r}, version={self.version!r})"

    def __lt__(self, other: Tag) -> bool:
        return (self.name, self.version or "") < (other.name, other.version or "")

    @classmethod
    def from_str(cls, text: str) -> Tag:
        """Parse ``"name"`` or ``"name:version"``."""
        if ":" not in text:
            name, version = text, None
        else:
            name, _, version = text.partition(":")
            if not version:
                raise BentoMLException(
                    f"{text!r} contains a trailing ':'. Maybe you meant '{name}:latest'?"
                )
        try:
            return cls(name, version)
        except ValueError as e:
            raise BentoMLException(f"Invalid tag {text!r}: {e}") from None

    @classmethod
    def from_taglike(cls, taglike: TagLike) -> Tag:
        return taglike if isinstance(taglike, Tag) else cls.from_str(taglike)

    @staticmethod
    def new_version() -> str:
        """A 16-character base32 version from a uuid1, as BentoML generates them."""
        raw = uuid.uuid1().bytes
        return base64.b32encode(raw[:6] + raw[8:12]).decode("ascii").lower()

    def make_new_version(self) -> Tag:
        if self.version is not None:
            raise ValueError("Only a tag without a version can get a new version")
        return Tag(self.name, self.new_version())

    def path(self) -> str:
        return self.name if self.version is None else f"{self.name}/{self.version}"

    def latest_path(self) -> str:
        return f"{self.name}/latest"


TagLike = Union[str, Tag]
