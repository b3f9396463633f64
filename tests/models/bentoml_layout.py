"""Builds model directories the way BentoML 1.1 writes them (shared by the store tests)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["write_bentoml_model"]


def write_bentoml_model(
    models_dir: Path,
    name: str,
    version: str,
    module: str = "bentoml.sklearn",
    created: str = "2023-11-01T08:36:52.456990+00:00",
    files: dict[str, bytes] | None = None,
) -> Path:
    """A model directory exactly as BentoML 1.1 writes it (model.yaml text by hand)."""
    framework = "sklearn" if module == "bentoml.sklearn" else "cloudpickle"
    versions = "scikit-learn: 1.1.0" if framework == "sklearn" else "cloudpickle: 2.2.1"
    signatures = (
        "  predict:\n    batchable: true\n    batch_dim:\n    - 0\n    - 1\n"
        "  predict_proba:\n    batchable: false\n"
        if framework == "sklearn"
        else "  __call__:\n    batchable: true\n    batch_dim:\n    - 0\n    - 1\n"
    )
    path = models_dir / name / version
    path.mkdir(parents=True)
    (path / "model.yaml").write_text(
        f"""name: {name}
version: {version}
module: {module}
labels:
  owner: bentoml-team
  stage: dev
options: {{}}
metadata:
  acc: 0.96
  classes:
  - setosa
  - versicolor
context:
  framework_name: {framework}
  framework_versions:
    {versions}
  bentoml_version: 1.1.11
  python_version: 3.10.12
signatures:
{signatures}api_version: v1
creation_time: '{created}'
"""
    )
    for rel, data in (files or {"saved_model.pkl": b"joblib bytes"}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data)
    return path
