"""``bentolite.load``: module, file and attribute forms, and clear errors for the rest."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

import bentolite
from bentolite.exceptions import BentoMLConfigException, ImportServiceError

SERVICE = """
import bentolite
from bentolite.io import Text
{name} = bentolite.Service({svc_name!r})

@{name}.api(input=Text(), output=Text())
def echo(text):
    return text
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BENTOLITE_HOME", str(tmp_path / "home"))
    modules_before = set(sys.modules)
    path_before = list(sys.path)
    yield tmp_path
    for name in set(sys.modules) - modules_before:  # the project's modules, not bentolite's
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    sys.path[:] = path_before


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_module_attr_module_and_file_forms(project: Path) -> None:
    _write(project / "ldr_one.py", SERVICE.format(name="svc", svc_name="one"))
    assert bentolite.load("ldr_one:svc", project).name == "one"
    assert bentolite.load("ldr_one", project).name == "one"
    _write(project / "pkg_ldr" / "__init__.py", "")
    _write(project / "pkg_ldr" / "inner.py", SERVICE.format(name="service", svc_name="two"))
    loaded = bentolite.load("pkg_ldr/inner.py:service", project)
    assert loaded.name == "two"
    assert sys.modules["pkg_ldr.inner"].service is loaded
    assert bentolite.load("pkg_ldr/inner.py", project) is loaded


def test_multiple_services_need_an_attr(project: Path) -> None:
    _write(project / "ldr_two.py", SERVICE.format(name="a", svc_name="a")
           + SERVICE.format(name="b", svc_name="b"))
    with pytest.raises(ImportServiceError, match="Multiple services found.*a, b"):
        bentolite.load("ldr_two", project)
    assert bentolite.load("ldr_two:b", project).name == "b"


@pytest.mark.parametrize("target,message", [
    ("ldr_missing_module:svc", "cannot import module 'ldr_missing_module'"),
    ("ldr_plain:svc", "has no attribute 'svc'"),
    ("ldr_plain:value", "is a int, not a bentolite.Service"),
    ("ldr_plain", "no Service instance or @bentolite.service class found"),
    ("nothere.py:svc", "not found"),
    ("", "expected 'module:attr'"),
])
def test_errors(project: Path, target: str, message: str) -> None:
    _write(project / "ldr_plain.py", "value = 1\n")
    with pytest.raises(ImportServiceError, match=message):
        bentolite.load(target, project)


def test_error_inside_user_module_is_shown_as_is(project: Path) -> None:
    _write(project / "ldr_broken.py", "import ldr_does_not_exist_anywhere\n")
    with pytest.raises(ModuleNotFoundError, match="ldr_does_not_exist_anywhere"):
        bentolite.load("ldr_broken", project)


NEW_STYLE = """
import bentolite as bentoml

@bentoml.service
class Leaf:
    @bentoml.api
    def hi(self) -> str:
        return "hi"

@bentoml.service
class Root:
    leaf = bentoml.depends(Leaf)

    @bentoml.api
    def hi(self) -> str:
        return self.leaf.hi()
"""


def test_new_style_root_is_picked_and_served_as_a_service(project: Path) -> None:
    _write(project / "ldr_new.py", NEW_STYLE)
    service = bentolite.load("ldr_new", project)
    assert service.name == "root" and list(service.apis) == ["hi"]
    assert [r.name for r in service.runners] == ["leaf", "root"]  # dependencies first
    assert bentolite.load("ldr_new:Leaf", project).name == "leaf"  # any one, by name


def test_two_new_style_roots_need_an_attr(project: Path) -> None:
    _write(project / "ldr_roots.py", NEW_STYLE + NEW_STYLE.replace("Root", "Other")
           .replace("Leaf", "Leaf2"))
    with pytest.raises(ImportServiceError, match="Multiple services found.*Other, Root"):
        bentolite.load("ldr_roots", project)


def test_a_directory_serves_its_bentofile_service_else_service_py(project: Path) -> None:
    app = project / "app_dir"
    _write(app / "service.py", NEW_STYLE)
    service = bentolite.load(".", app)
    assert (service.name, service.import_string, service.working_dir) == (
        "root", "service.py", str(app))
    _write(app / "bentofile.yaml", 'service: "service:Leaf"\n')
    assert bentolite.load("app_dir", project).name == "leaf"
    _write(app / "bentofile.yaml", "include: ['*.py']\n")
    with pytest.raises(BentoMLConfigException, match="service: required"):
        bentolite.load(".", app)
    (project / "empty_dir").mkdir()
    with pytest.raises(ImportServiceError, match="neither a bentofile.yaml nor a service.py"):
        bentolite.load(".", project / "empty_dir")
