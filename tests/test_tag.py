from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bentolite.exceptions import BentoMLException
from bentolite.tag import Tag

VALID_PART = st.from_regex(r"[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


def test_str_repr_and_parts():
    tag = Tag("iris_clf", "2uo5fkgxj27exuqj")
    assert str(tag) == "iris_clf:2uo5fkgxj27exuqj"
    assert repr(tag) == "Tag(name='iris_clf', version='2uo5fkgxj27exuqj')"
    assert str(Tag("iris")) == "iris"
    assert tag.path() == "iris_clf/2uo5fkgxj27exuqj"
    assert tag.latest_path() == "iris_clf/latest"


def test_from_taglike_accepts_str_and_tag():
    tag = Tag("a", "b")
    assert Tag.from_taglike(tag) is tag
    assert Tag.from_taglike("a:b") == tag
    assert Tag.from_taglike("a") == Tag("a", None)
    assert Tag.from_str("a:latest").version == "latest"


def test_equality_hash_and_ordering():
    assert Tag("a", "1") == Tag("a", "1")
    assert len({Tag("a", "1"), Tag("a", "1"), Tag("a")}) == 2
    assert sorted([Tag("b"), Tag("a", "2"), Tag("a", "1"), Tag("a")]) == [
        Tag("a"), Tag("a", "1"), Tag("a", "2"), Tag("b"),
    ]


def test_uppercase_is_lowercased_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="bentolite.tag"):
        tag = Tag.from_str("Iris_CLF:ABC")
    assert tag == Tag("iris_clf", "abc")
    assert "lowercase" in caplog.text


@pytest.mark.parametrize(
    "text",
    ["../x", "a/b", "", "a" * 64, "a:" + "b" * 64, ":v", "-a", "a-", "a b", "a:b:c", "a:../b",
     "é", "a\n", ".a"],
)
def test_invalid_tags_are_refused_stating_the_rule(text):
    with pytest.raises(BentoMLException, match="Invalid tag") as info:
        Tag.from_str(text)
    assert "1-63 characters of lowercase letters, digits" in str(info.value)


def test_trailing_colon_suggests_latest():
    with pytest.raises(BentoMLException, match=re.escape("Maybe you meant 'name:latest'")):
        Tag.from_str("name:")


def test_constructor_raises_value_error_like_v1():
    with pytest.raises(ValueError, match="not a valid tag name"):
        Tag("a/b")
    with pytest.raises(ValueError, match="64 characters"):
        Tag("a" * 64)
    assert Tag("a" * 63).name == "a" * 63


def test_new_versions_are_16_base32_chars_and_unique():
    versions = {Tag("m").make_new_version().version for _ in range(200)}
    assert len(versions) == 200
    assert all(re.fullmatch(r"[a-z2-7]{16}", v) for v in versions)
    with pytest.raises(ValueError):
        Tag("m", "v").make_new_version()


@given(VALID_PART, st.none() | VALID_PART)
@settings(max_examples=200, deadline=None)
def test_parse_str_round_trip(name, version):
    tag = Tag(name, version)
    assert Tag.from_str(str(tag)) == tag
    assert (tag.name, tag.version) == (name, version)


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_invalid_strings_are_always_refused(text):
    part = re.compile(r"[a-z0-9]([-._a-z0-9]*[a-z0-9])?")

    def valid(p: str) -> bool:
        return len(p) <= 63 and part.fullmatch(p) is not None

    name, colon, version = text.lower().partition(":")
    if valid(name) and (not colon or valid(version)):
        assert str(Tag.from_str(text)) == text.lower()
    else:
        with pytest.raises(BentoMLException):
            Tag.from_str(text)
