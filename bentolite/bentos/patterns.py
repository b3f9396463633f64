"""Which files of a build context go into a bento: ``include``/``exclude`` and ``.bentoignore``.

Patterns follow .gitignore's rules, as BentoML's do: a pattern without ``/`` matches a name
at any depth, one with ``/`` is anchored at its base, ``**`` spans directories, a trailing
``/`` matches directories only, ``!`` re-includes, the last matching pattern wins, and a
matched directory takes everything under it. ``.git`` is never included.
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

__all__ = ["PathSpec", "context_files"]

IGNORE_FILE = ".bentoignore"


def _translate(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class PathSpec:
    """Compiled .gitignore-style patterns; ``match`` takes a POSIX path relative to the base."""

    __slots__ = ("_rules",)

    def __init__(self, lines: Iterable[str]) -> None:
        self._rules: list[tuple[re.Pattern[str], bool, bool]] = []  # (regex, negated, dir only)
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            line = line[1:] if negated else line
            line = line[1:] if line.startswith("\\") else line
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            if not line:
                continue
            anchored = "/" in line
            body = _translate(line.lstrip("/"))
            regex = re.compile(body if anchored else f"(?:.*/)?{body}")
            self._rules.append((regex, negated, dir_only))

    def match(self, path: str) -> bool:
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for regex, negated, dir_only in self._rules:
            candidates = prefixes[:-1] if dir_only else prefixes
            if any(regex.fullmatch(c) for c in candidates):
                result = not negated
        return result


def context_files(root: Path, include: list[str], exclude: list[str]) -> Iterator[str]:
    """POSIX paths (relative to ``root``) of the files the bento's ``src/`` gets, sorted."""
    including, excluding = PathSpec(include), PathSpec(exclude)
    ignores: list[tuple[str, PathSpec]] = []  # (dir relative to root, its .bentoignore)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        if IGNORE_FILE in filenames:
            ignores.append((rel_dir, PathSpec((Path(dirpath) / IGNORE_FILE).read_text().splitlines())))
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if Path(dirpath, name).is_symlink() and not Path(dirpath, name).is_file():
                continue  # a dangling link
            if not including.match(rel) or excluding.match(rel):
                continue
            if any(spec.match(rel[len(base) + 1:] if base else rel) for base, spec in ignores
                   if not base or rel.startswith(base + "/")):
                continue
            yield rel
