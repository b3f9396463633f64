"""Export/import in every format, refusal of unsafe members, and concurrent imports."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bentolite import models
from bentolite.exceptions import BentoMLException
from bentolite.models import ModelStore


def _save(name: str = "m", **kwargs) -> models.Model:
    with models.create(name, module="bentoml.picklable_model", **kwargs) as model:
        Path(model.path_of("weights.bin")).write_bytes(b"\x00\x01weights")
        Path(model.path_of("sub")).mkdir()
        Path(model.path_of("sub/vocab.txt")).write_text("a\nb\n")
    return model


def _files(root: str | Path) -> dict[str, bytes]:
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "fmt, suffix",
    [("bentomodel", ".bentomodel"), ("tar", ".tar"), ("gz", ".gz"), ("xz", ".xz"),
     ("bz2", ".bz2"), ("zip", ".zip"), ("folder", "")],
)
def test_export_import_round_trip(home: Path, tmp_path: Path, fmt: str, suffix: str):
    model = _save(labels={"k": "v"}, metadata={"n": 1}, custom_objects={"c": [1]})
    before = (model.info.to_dict(), _files(model.path))
    explicit = fmt if fmt == "folder" else None
    written = models.export_model(model.tag, str(tmp_path / f"out{suffix}"), explicit)
    assert written == str(tmp_path / f"out{suffix}")
    models.delete(model.tag)
    imported = models.import_model(written)
    assert imported.tag == model.tag
    assert (imported.info.to_dict(), _files(imported.path)) == before
    assert imported.custom_objects == {"c": [1]}
    assert models.get("m") == imported
    assert list((home / "tmp").glob("bentolite-*")) == []
    assert not list(tmp_path.glob(".*partial"))


def test_export_into_a_directory_names_the_file(home: Path, tmp_path: Path):
    model = _save()
    out = models.export_model("m", str(tmp_path) + "/")
    assert out == str(tmp_path / f"m-{model.tag.version}.bentomodel")
    assert models.export_model("m", str(tmp_path / "plain")) == str(tmp_path / "plain.bentomodel")
    assert models.export_model("m", str(tmp_path), "zip").endswith(f"m-{model.tag.version}.zip")


def test_bentomodel_is_a_tar_xz_of_the_directory_contents(home: Path, tmp_path: Path):
    _save()
    out = models.export_model("m", str(tmp_path / "x.bentomodel"))
    with tarfile.open(out, "r:xz") as tf:
        names = sorted(tf.getnames())
    assert names == ["model.yaml", "sub/vocab.txt", "weights.bin"]


def test_import_of_an_existing_tag_is_refused(home: Path, tmp_path: Path):
    _save()
    out = models.export_model("m", str(tmp_path / "x.bentomodel"))
    with pytest.raises(BentoMLException, match="already exists"):
        models.import_model(out)
    assert list((home / "tmp").glob("bentolite-*")) == []


def test_unknown_format_and_missing_file(home: Path, tmp_path: Path):
    _save()
    with pytest.raises(BentoMLException, match="unknown format 'rar'"):
        models.export_model("m", str(tmp_path / "x"), "rar")
    with pytest.raises(BentoMLException, match="does not exist"):
        models.import_model(str(tmp_path / "missing.bentomodel"))
    junk = tmp_path / "junk.bentomodel"
    junk.write_bytes(b"not an archive")
    with pytest.raises(BentoMLException, match="is not a readable model archive"):
        models.import_model(str(junk))


@pytest.mark.parametrize("fmt", ["bentomodel", "gz", "bz2", "zip"])
def test_truncated_or_damaged_archive_is_a_clear_error(home: Path, tmp_path: Path, fmt: str):
    with models.create("big", module="bentoml.picklable_model") as model:
        Path(model.path_of("weights.bin")).write_bytes(bytes(range(256)) * 400)
    out = Path(models.export_model("big", str(tmp_path / "a"), fmt))
    models.delete("big")
    data = out.read_bytes()
    out.write_bytes(data[:60] + data[len(data) // 2 :] if fmt == "zip" else data[: len(data) // 2])
    with pytest.raises(BentoMLException, match="is not a readable model archive"):
        models.import_model(str(out))
    assert models.list() == []
    assert list((home / "tmp").glob("bentolite-*")) == []


# --- unsafe archives ------------------------------------------------------------------

MODEL_YAML = b"name: evil\nversion: v1\nmodule: bentoml.picklable_model\n"


def _tar(path: Path, extra: tarfile.TarInfo, data: bytes | None = None) -> Path:
    with tarfile.open(path, "w:xz") as tf:
        info = tarfile.TarInfo("model.yaml")
        info.size = len(MODEL_YAML)
        tf.addfile(info, io.BytesIO(MODEL_YAML))
        if data is not None:
            extra.size = len(data)
        tf.addfile(extra, io.BytesIO(data) if data is not None else None)
    return path


def _zip(path: Path, name: str, data: bytes, mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("model.yaml", MODEL_YAML)
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


def _assert_refused(home: Path, archive: Path, match: str, escaped: Path) -> None:
    with pytest.raises(BentoMLException, match=match):
        models.import_model(str(archive))
    assert not escaped.exists()
    assert models.list() == []
    assert list((home / "tmp").glob("bentolite-*")) == []


def test_tar_absolute_path_is_refused(home: Path, tmp_path: Path):
    target = tmp_path / "abs_escape.txt"
    archive = _tar(tmp_path / "a.bentomodel", tarfile.TarInfo(str(target)), b"pwned")
    _assert_refused(home, archive, "absolute path", target)


def test_tar_dotdot_is_refused(home: Path, tmp_path: Path):
    archive = _tar(tmp_path / "a.bentomodel", tarfile.TarInfo("sub/../../../../dd.txt"), b"x")
    _assert_refused(home, archive, r"'\.\.' leaves the target", home.parent / "dd.txt")


def test_tar_symlink_is_refused(home: Path, tmp_path: Path):
    link = tarfile.TarInfo("weights.bin")
    link.type = tarfile.SYMTYPE
    link.linkname = str(tmp_path / "secret")
    archive = _tar(tmp_path / "a.bentomodel", link)
    _assert_refused(home, archive, "links and special files", tmp_path / "secret")


def test_tar_hardlink_is_refused(home: Path, tmp_path: Path):
    secret = tmp_path / "secret"
    secret.write_text("do not copy")
    link = tarfile.TarInfo("weights.bin")
    link.type = tarfile.LNKTYPE
    link.linkname = str(secret)
    archive = _tar(tmp_path / "a.bentomodel", link)
    _assert_refused(home, archive, "links and special files", tmp_path / "never")
    assert secret.read_text() == "do not copy"


def test_tar_device_is_refused(home: Path, tmp_path: Path):
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    archive = _tar(tmp_path / "a.tar", dev)
    _assert_refused(home, archive, "links and special files", tmp_path / "never")


def test_zip_absolute_path_is_refused(home: Path, tmp_path: Path):
    target = tmp_path / "zip_abs.txt"
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.yaml", MODEL_YAML)
        info = zipfile.ZipInfo("placeholder")
        info.filename = str(target)  # ZipInfo() strips a leading '/'; a hostile tool would not
        zf.writestr(info, b"x")
    assert zipfile.ZipFile(archive).namelist()[1].startswith("/")
    _assert_refused(home, archive, "absolute path", target)


@pytest.mark.parametrize("name", ["../../zz.txt", "sub\\..\\..\\..\\zz.txt"])
def test_zip_dotdot_is_refused(home: Path, tmp_path: Path, name: str):
    archive = _zip(tmp_path / "a.zip", name, b"x")
    _assert_refused(home, archive, r"'\.\.' leaves the target", home.parent.parent / "zz.txt")


def test_zip_symlink_is_refused(home: Path, tmp_path: Path):
    archive = _zip(tmp_path / "a.zip", "weights.bin", str(tmp_path / "secret").encode(), 0o120777)
    _assert_refused(home, archive, "symbolic link", tmp_path / "never")


def test_folder_with_symlink_is_refused(home: Path, tmp_path: Path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "model.yaml").write_bytes(MODEL_YAML)
    (folder / "weights.bin").symlink_to("/etc/passwd")
    _assert_refused(home, folder, "symbolic links are not allowed", tmp_path / "never")


def test_archive_with_an_invalid_tag_in_model_yaml_is_refused(home: Path, tmp_path: Path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        data = b"name: ../up\nversion: v1\nmodule: x\n"
        info = tarfile.TarInfo("model.yaml")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    _assert_refused(home, archive, "invalid tag", home / "up")


def test_concurrent_import_of_one_archive(home: Path, tmp_path: Path):
    model = _save()
    out = models.export_model("m", str(tmp_path / "x.bentomodel"))
    models.delete(model.tag)
    code = textwrap.dedent(
        """
        import sys
        from bentolite import models
        from bentolite.exceptions import BentoMLException
        try:
            models.import_model(sys.argv[1])
        except BentoMLException as e:
            print(e)
            sys.exit(3)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, out], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = []
    for p in procs:
        stdout, _ = p.communicate(timeout=60)
        results.append((p.returncode, stdout))
    assert sorted(rc for rc, _ in results) == [0, 3, 3]
    assert all("already exists" in text for rc, text in results if rc == 3)
    assert [m.tag for m in models.list()] == [model.tag]
    assert _files(models.get("m").path)["weights.bin"] == b"\x00\x01weights"
    assert list((home / "tmp").glob("bentolite-*")) == []


# --- property test ----------------------------------------------------------------------

json_leaf = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=10)
json_like = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(
    labels=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
    metadata=st.dictionaries(st.text(max_size=8), json_like, max_size=3),
    batchable=st.booleans(),
    batch_dim=st.integers(0, 3),
    fmt=st.sampled_from(["bentomodel", "gz", "tar", "zip", "folder"]),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_export_import_preserves_info(labels, metadata, batchable, batch_dim, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        source, target = ModelStore(Path(tmp, "a")), ModelStore(Path(tmp, "b"))
        with models.create(
            "prop", module="bentoml.picklable_model", labels=labels, metadata=metadata,
            signatures={"predict": {"batchable": batchable, "batch_dim": batch_dim}}, _store=source,
        ) as model:
            Path(model.path_of("f")).write_bytes(b"1")
        out = models.export_model(model.tag, str(Path(tmp, "out")), fmt, _store=source)
        imported = models.import_model(out, _store=target)
        assert imported.info.to_dict() == source.get(model.tag).info.to_dict()
        assert imported.info.labels == labels
        assert imported.info.metadata == metadata
