"""Train an iris classifier and save it as ``iris_clf`` (BentoML 1.x's quickstart model).

Written against the v1 API: only the import line says bentolite.
"""
from __future__ import annotations

from sklearn.datasets import load_iris
from sklearn.svm import SVC

import bentolite as bentoml


def main() -> None:
    features, labels = load_iris(return_X_y=True)
    classifier = SVC(gamma="scale").fit(features, labels)
    model = bentoml.sklearn.save_model(
        "iris_clf", classifier,
        signatures={"predict": {"batchable": True, "batch_dim": 0}},  # rows batch together
    )
    print(f"saved {model.tag}")


if __name__ == "__main__":
    main()
