"""include/exclude/.bentoignore patterns match as BentoML's (pathspec's gitwildmatch) do."""
from __future__ import annotations

import json
import subprocess

from bentolite.bentos.patterns import PathSpec
from tests.peers import bentoml_python

PATTERNS = [["*"], ["*.py"], ["/save.py"], ["data/"], ["data"], ["src/*.py"], ["a/**/z.txt"],
            ["**/cache"], ["*", "!keep.txt"], ["*.py", "!test_*.py"], ["d?ta/*.json"],
            ["[ab].txt"], ["models/**"], ["# comment", "", "*.tmp"], ["/a/b/"], ["**"]]
PATHS = ["save.py", "a/save.py", "data/x.json", "dota/x.json", "data", "src/a.py",
         "src/x/a.py", "a/z.txt", "a/b/c/z.txt", "x/cache/f", "keep.txt", "test_a.py", "a.txt",
         "c.txt", "models/m/v/model.yaml", "f.tmp", "a/b/c", "deep/er/file.py"]

PEER = """
import json, sys
from pathspec import PathSpec
patterns, paths = json.loads(sys.stdin.read())
print(json.dumps([[PathSpec.from_lines("gitwildmatch", p).match_file(f) for f in paths]
                  for p in patterns]))
"""


def test_patterns_match_as_bentoml_matches_them() -> None:
    done = subprocess.run([bentoml_python(), "-c", PEER], input=json.dumps([PATTERNS, PATHS]),
                          capture_output=True, text=True, check=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    expected = json.loads(done.stdout)
    ours = [[PathSpec(p).match(f) for f in PATHS] for p in PATTERNS]
    differences = [(p, f, e) for p, row, erow in zip(PATTERNS, ours, expected)
                   for f, o, e in zip(PATHS, row, erow) if o != e]
    assert not differences, differences
