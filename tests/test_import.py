import subprocess
import sys

HEAVY = ["torch", "transformers", "xgboost", "easyocr", "pandas", "onnx", "onnxruntime", "lightgbm",
         "catboost", "ray"]


def test_import_bentolite_stays_light():
    code = (
        "import sys, bentolite; bentolite.Tag; bentolite.models; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_bentolite_ray_imports_ray_only_when_deploying():
    code = "import sys, bentolite; bentolite.ray.deployment; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_unknown_attribute_is_an_attribute_error():
    import bentolite

    try:
        bentolite.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_every_public_name_resolves():
    # in a fresh interpreter: each lazy name imports its module (frameworks: their extras,
    # all in the test venv) and gives what its table names
    code = "import bentolite; [getattr(bentolite, n) for n in bentolite.__all__]; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
