"""A wheel of the running bentolite, so an image installs the exact code that built it.

Written straight from the imported package and its installed metadata (no build backend,
no network): the files under ``bentolite/``, ``Requires-Dist`` and the console script.
"""
from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from importlib import metadata
from pathlib import Path

__all__ = ["write_bentolite_wheel"]


def _requirements() -> list[str]:
    try:
        return list(metadata.requires("bentolite") or [])
    except metadata.PackageNotFoundError:  # imported from a checkout without an install
        from configparser import ConfigParser

        setup_cfg = Path(__file__).resolve().parents[2] / "setup.cfg"
        parser = ConfigParser()
        parser.read(setup_cfg)
        raw = parser.get("options", "install_requires", fallback="")
        return [line.strip() for line in raw.splitlines() if line.strip()]


def write_bentolite_wheel(dest_dir: str | Path) -> Path:
    """Write ``bentolite-<version>-py3-none-any.whl`` into ``dest_dir``; return its path."""
    import bentolite

    version = bentolite.__version__
    package = Path(bentolite.__file__).resolve().parent
    dist_info = f"bentolite-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[f"bentolite/{path.relative_to(package).as_posix()}"] = path.read_bytes()
    meta = ["Metadata-Version: 2.1", "Name: bentolite", f"Version: {version}",
            "Requires-Python: >=3.10"]
    requirements = _requirements()
    extras = sorted(set(re.findall(r"extra\s*==\s*['\"]([\w.-]+)", " ".join(requirements))))
    meta += [f"Provides-Extra: {extra}" for extra in extras]
    meta += [f"Requires-Dist: {req}" for req in requirements]
    files[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: bentolite\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    files[f"{dist_info}/entry_points.txt"] = b"[console_scripts]\nbentolite = bentolite.cli:main\n"
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = Path(dest_dir) / f"bentolite-{version}-py3-none-any.whl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out
