"""Atomic saves, concurrent writers and kills, with real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bentolite import models
from bentolite.exceptions import NotFound

SAVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bentolite import models

    for i in range(int(sys.argv[1])):
        with models.create("shared", module="bentoml.picklable_model") as model:
            Path(model.path_of("data.txt")).write_text(f"{sys.argv[2]}-{i}")
    """
)

KILLED_SAVER = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from bentolite import models

    with models.create("victim", module="bentoml.picklable_model") as model:
        Path(model.path_of("weights.bin")).write_bytes(b"x" * 1000)
        print("writing", flush=True)
        time.sleep(120)
    """
)


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], **kwargs)


def test_concurrent_saves_under_one_name(home: Path):
    procs = [_python(SAVER, "5", str(n)) for n in range(4)]
    try:
        codes = [p.wait(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0, 0, 0]
    saved = models.list("shared")
    assert len(saved) == 20
    contents = sorted(Path(m.path_of("data.txt")).read_text() for m in saved)
    assert contents == sorted(f"{n}-{i}" for n in range(4) for i in range(5))
    latest = (home / "models" / "shared" / "latest").read_text()
    newest = max(saved, key=lambda m: m.creation_time)
    assert latest == newest.tag.version
    assert models.get("shared") == newest
    assert list((home / "tmp").glob("bentolite-*")) == []
    assert [p.name for p in (home / "models" / "shared").iterdir() if p.is_file()] == ["latest"]


def test_concurrent_saves_of_one_explicit_tag(home: Path):
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from bentolite import models
        from bentolite.exceptions import BentoMLException
        try:
            with models.create("same:v1", module="bentoml.picklable_model") as model:
                Path(model.path_of("who")).write_text(sys.argv[1])
        except BentoMLException as e:
            print(e)
            sys.exit(3)
        """
    )
    procs = [_python(code, str(n), stdout=subprocess.PIPE, text=True) for n in range(3)]
    results = [(p.communicate(timeout=60)[0], p.returncode) for p in procs]
    assert sorted(rc for _, rc in results) == [0, 3, 3]
    assert all("already exists" in out for out, rc in results if rc == 3)
    winner = next(str(n) for n, (_, rc) in enumerate(results) if rc == 0)
    assert Path(models.get("same").path_of("who")).read_text() == winner
    assert (home / "models" / "same" / "latest").read_text() == "v1"


def test_kill_during_save_leaves_nothing_visible(home: Path):
    proc = _python(KILLED_SAVER, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        staged = list((home / "tmp").glob("bentolite-*"))
        assert len(staged) == 1 and list(staged[0].rglob("weights.bin"))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    with pytest.raises(NotFound):
        models.get("victim")  # this store operation also clears the dead process's staging
    assert models.list() == []
    assert list((home / "tmp").glob("bentolite-*")) == []
    assert list((home / "tmp" / ".bentolite-locks").glob("staging-*")) == []
    assert not (home / "models" / "victim").exists()


def test_staging_of_a_live_owner_is_left_alone(home: Path):
    store = models.default_store()
    with store.staging() as mine:
        models.list()
        other = models.ModelStore(home)
        other.clean_stale()
        assert mine.is_dir()
    assert not mine.exists()
    assert list((home / "tmp" / ".bentolite-locks").glob("staging-*")) == []


def test_staging_of_a_live_process_is_left_alone(home: Path):
    code = textwrap.dedent(
        """
        import sys, time
        from bentolite import models
        with models.default_store().staging() as path:
            print(path, flush=True)
            sys.stdin.readline()
        """
    )
    proc = _python(code, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        path = Path(proc.stdout.readline().strip())
        models.list()  # would sweep it if it looked stale
        assert path.is_dir()
        proc.stdin.write("done\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def test_list_and_get_while_another_process_saves_and_deletes(home: Path):
    churn = textwrap.dedent(
        """
        from pathlib import Path
        from bentolite import models
        for i in range(25):
            with models.create("churn", module="bentoml.picklable_model") as model:
                Path(model.path_of("f")).write_text(str(i))
            models.delete(model.tag)
        print("done", flush=True)
        """
    )
    with models.create("churn:keep", module="bentoml.picklable_model") as kept:
        Path(kept.path_of("f")).write_text("keep")
    proc = _python(churn, stdout=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None:
            assert kept in models.list()
            assert kept in models.list("churn")
            assert models.get("churn").tag.name == "churn"  # latest is always valid
        assert proc.stdout.read().strip() == "done"
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert models.list("churn") == [kept]
    assert models.get("churn") == kept
