"""multipart/form-data on bytes: parse a whole body into parts, and build one (RFC 7578)."""
from __future__ import annotations

import uuid
from typing import Iterable, Mapping

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ..exceptions import BadInput

__all__ = ["FormPart", "parse_header_params", "parse_form_data", "build_form_data"]

_MAX_PARTS = 1000


@attrs.frozen
class FormPart:
    """One part of a form: its headers, body, form field name and upload filename."""

    headers: CIMultiDictProxy[str]
    body: bytes
    name: str | None
    filename: str | None

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename="b.png"'`` -> ``("form-data", {"name": "a", ...})``."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            chars = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(chars)
        else:
            end = rest.find(";", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return main.strip().lower(), params


def parse_form_data(body: bytes, content_type: str, field: str = "body") -> list[FormPart]:
    """Split a multipart body into parts; malformed bodies raise BadInput naming ``field``."""
    _, params = parse_header_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise BadInput("multipart/form-data request has no boundary in its Content-Type", field=field)
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise BadInput("multipart body does not contain its boundary", field=field)
    parts: list[FormPart] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts
        if len(parts) >= _MAX_PARTS:
            raise BadInput(f"multipart body has more than {_MAX_PARTS} parts", field=field)
        line_end = chunk.find(b"\r\n")
        if line_end < 0 or chunk[:line_end].strip(b" \t"):
            raise BadInput("multipart body is malformed (bad boundary line)", field=field)
        rest = chunk[line_end + 2 :]
        if rest.startswith(b"\r\n"):  # a part with no headers
            head, content = b"", rest[2:]
        else:
            head, sep, content = rest.partition(b"\r\n\r\n")
            if not sep:
                raise BadInput("multipart part has no blank line after its headers", field=field)
        parts.append(_make_part(head, content, field))
    raise BadInput("multipart body is truncated (no closing boundary)", field=field)


def _make_part(head: bytes, content: bytes, field: str) -> FormPart:
    headers: CIMultiDict[str] = CIMultiDict()
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise BadInput(f"multipart part has a malformed header line: {line[:80]!r}", field=field)
        headers.add(key.strip(), value.strip())
    name = filename = None
    disposition = headers.get("content-disposition")
    if disposition:
        _, params = parse_header_params(disposition)
        name, filename = params.get("name"), params.get("filename")
    return FormPart(CIMultiDictProxy(headers), content, name, filename)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def build_form_data(parts: Iterable[tuple[str, Mapping[str, str], bytes]]) -> tuple[bytes, str]:
    """Render ``(name, headers, body)`` parts; returns the body and its Content-Type."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, headers, body in parts:
        part_headers = CIMultiDict(headers)
        filename = None
        if "content-disposition" in part_headers:
            _, params = parse_header_params(part_headers.pop("content-disposition"))
            filename = params.get("filename")
        disposition = f'form-data; name="{_quote(name)}"'
        if filename:
            disposition += f'; filename="{_quote(filename)}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode("utf-8")
        for key, value in part_headers.items():
            out += f"{key}: {value}\r\n".encode("utf-8")
        out += b"\r\n" + bytes(body) + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return bytes(out), f"multipart/form-data; boundary={boundary}"
