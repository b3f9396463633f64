"""Round trips with the real BentoML 1.1.11, in its own venv (tests/peers.py)."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path


from tests.peers import bentoml_python

import bentolite
from bentolite import models



BENTOML_SIDE = textwrap.dedent(
    """
    import sys
    import bentoml

    lite = bentoml.models.import_model(sys.argv[1])
    assert bentoml.models.get("lite_model:latest").tag == lite.tag
    assert lite.info.signatures["__call__"].batch_dim == (0, 0)
    assert lite.info.labels == {"team": "ml"} and lite.info.metadata == {"m": 1}
    assert lite.custom_objects == {"c": 2}
    assert bentoml.picklable_model.load_model(lite.tag)(41) == 42
    runner = lite.to_runner()
    runner.init_local(quiet=True)
    assert runner.run(1) == 2

    mine = bentoml.picklable_model.save_model(
        "bm_model", lambda x: x * 3, custom_objects={"k": "v"},
        signatures={"__call__": {"batchable": True, "batch_dim": 1}},
    )
    print(bentoml.models.export_model(mine.tag, sys.argv[2]))
    """
)


def test_archives_and_stores_move_both_ways(home: Path, tmp_path: Path):
    lite = bentolite.picklable_model.save_model(
        "lite_model", lambda x: x + 1, labels={"team": "ml"}, metadata={"m": 1},
        custom_objects={"c": 2}, signatures={"__call__": {"batchable": True}},
    )
    archive = models.export_model(lite.tag, str(tmp_path / "lite.bentomodel"))
    bentoml_home = tmp_path / "bentoml_home"
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [bentoml_python(), "-c", BENTOML_SIDE, archive, str(tmp_path / "bm.bentomodel")],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]

    # bentolite reads the store BentoML wrote...
    store = models.ModelStore(bentoml_home)
    assert sorted(m.tag.name for m in store.list()) == ["bm_model", "lite_model"]
    theirs = store.get("bm_model")
    assert bentolite.picklable_model.load_model(theirs)(2) == 6
    # ...and imports the archive BentoML exported
    imported = models.import_model(str(tmp_path / "bm.bentomodel"))
    assert imported.tag == theirs.tag
    assert imported.info.signatures["__call__"].batch_dim == (1, 1)
    assert imported.info.context.bentoml_version == "1.1.11"
    assert imported.custom_objects == {"k": "v"}
    assert imported.to_runnable()()(5) == 15
