"""Each example end to end: its save_models.py, ``bentolite serve``, real HTTP, the answer."""
from __future__ import annotations

import io
import json
import runpy
from pathlib import Path

import pytest

from bentolite import tracing
from bentolite.testing import render_text_image

from tests.e2e.example_server import EXAMPLES, ExampleServer, save_models

pytest.importorskip("transformers")

SENTENCE = "the quick brown fox"
GENERATORS = ["gpt2-generation", "distilgpt2-generation", "gpt2-medium-generation"]
CLASSIFIER = "bert-base-uncased-classification"
API_SPAN = "POST /classify_generated_texts"


def png_of_text(text: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(render_text_image(text)).save(out, format="PNG")
    return out.getvalue()


def test_inference_graph(tmp_path: Path) -> None:
    """The answer's shape, and spans showing parallel generators and sequential classifiers."""
    pytest.importorskip("opentelemetry.sdk")
    home = tmp_path / "home"
    printed = save_models("inference_graph", home)
    assert all(f"saved {name}:" in printed for name in [*GENERATORS, CLASSIFIER]), printed
    span_file = tmp_path / "spans.jsonl"
    env = {"BENTOLITE_CONFIG_OPTIONS": "tracing.exporter_type=in_memory tracing.sample_rate=1.0",
           tracing.TRACE_FILE_ENV: str(span_file)}
    with ExampleServer("inference_graph", home, tmp_path, env) as server:
        server.wait_ready()
        answer = server.post_json("/classify_generated_texts", SENTENCE.encode(), "text/plain")
        status, body = server.post("/classify_generated_texts", b"\xff\xfe", "text/plain")
        assert server.stop() == 0, server.log()[-3000:]
    log = server.log()

    assert isinstance(answer, list) and len(answer) == 3, answer
    for item in answer:
        assert set(item) == {"generated", "score"}, item
        assert item["generated"].startswith(SENTENCE)
        assert isinstance(item["score"], float) and 0.0 <= item["score"] <= 1.0
    assert status == 400 and "error" in json.loads(body), body  # not UTF-8: the client's fault

    spans = tracing.read_span_file(span_file)
    [api] = [s for s in spans if s["name"] == API_SPAN and s["attributes"]["http.status_code"] == 200]
    assert api["kind"] == "SERVER" and api["service_name"] == "inference_graph"
    calls = [s for s in spans if s["parent_span_id"] == api["span_id"]]
    assert all(s["kind"] == "CLIENT" and s["trace_id"] == api["trace_id"] for s in calls)
    generators = [s for s in calls if s["name"].split(".")[0] in GENERATORS]
    classifiers = sorted((s for s in calls if s["name"].startswith(CLASSIFIER + ".")),
                         key=lambda s: s["start_ns"])
    assert sorted(s["name"].split(".")[0] for s in generators) == sorted(GENERATORS), calls
    assert len(classifiers) == 3 and len(calls) == 6, calls
    # the three generator calls overlap: each started before any of them finished
    assert max(s["start_ns"] for s in generators) < min(s["end_ns"] for s in generators)
    # the classifier calls follow the generators, one after another
    assert max(s["end_ns"] for s in generators) <= classifiers[0]["start_ns"]
    for earlier, later in zip(classifiers, classifiers[1:]):
        assert earlier["end_ns"] <= later["start_ns"]
    assert all(api["start_ns"] <= s["start_ns"] and s["end_ns"] <= api["end_ns"] for s in calls)

    # the access log line carries the API span's ids
    assert (f"(trace={api['trace_id']},span={api['span_id']},sampled=1,"
            "service.name=inference_graph)") in log, log[-3000:]

    # the example's waterfall printer shows the API span and every call under it
    show_trace = runpy.run_path(str(EXAMPLES / "inference_graph" / "show_trace.py"))
    lines = show_trace["waterfall"]([s for s in spans if s["trace_id"] == api["trace_id"]])
    assert lines[0].startswith(f"trace {api['trace_id']}")
    assert len(lines) == 2 + 2 * len(calls), lines

    # production: each runner worker continued the trace from the frame header
    workers = {s["parent_span_id"]: s for s in spans
               if s["kind"] == "SERVER" and s["name"] != API_SPAN}
    for call in calls:
        worker = workers[call["span_id"]]
        assert worker["name"] == call["name"] and worker["trace_id"] == api["trace_id"]
        assert worker["service_name"] == call["name"].split(".")[0] and worker["pid"] != api["pid"]
        assert call["start_ns"] <= worker["start_ns"] <= worker["end_ns"] <= call["end_ns"]


def test_ocr_sentiment(tmp_path: Path) -> None:
    pytest.importorskip("easyocr")
    home = tmp_path / "home"
    printed = save_models("ocr_sentiment", home)
    assert "saved ocr_model:" in printed and "saved sentiment_model:" in printed, printed
    with ExampleServer("ocr_sentiment", home, tmp_path) as server:
        server.wait_ready()
        answer = server.post_json("/classify", png_of_text("bentolite reads text"), "image/png")
        status, text = server.post("/read_text", png_of_text("good service"), "image/png")
        bad_status, bad_body = server.post("/classify", b"not an image", "image/png")
        assert server.stop() == 0, server.log()[-3000:]

    assert set(answer) == {"text", "label", "score"}, answer
    assert answer["text"].lower() == "bentolite reads text", answer
    assert answer["label"] in {"NEGATIVE", "POSITIVE"}
    assert 0.0 <= answer["score"] <= 1.0
    assert (status, text.decode().lower()) == (200, "good service")
    assert bad_status == 400 and "error" in json.loads(bad_body), bad_body


def test_ensemble(tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    pytest.importorskip("torch")
    home = tmp_path / "home"
    printed = save_models("ensemble", home)
    assert "saved model_a:" in printed and "saved model_b:" in printed, printed
    with ExampleServer("ensemble", home, tmp_path) as server:
        server.wait_ready()
        black_left = png_of_text("I")  # black text on white: every quadrant mostly white
        answer = server.post_json("/predict", black_left, "image/png")
        again = server.post_json("/predict", black_left, "image/png")
        bad_status, bad_body = server.post("/predict", b"\x89PNG broken", "image/png")
        assert server.stop() == 0, server.log()[-3000:]

    assert set(answer) == {"features", "model_a", "model_b"}, answer
    assert len(answer["features"]) == 4 and all(0.5 < f <= 1.0 for f in answer["features"])
    assert len(answer["model_a"]) == 1 and len(answer["model_b"]) == 2
    assert all(isinstance(v, float) for v in answer["model_a"] + answer["model_b"])
    assert again == answer  # the same image gives the same answer
    assert bad_status == 400 and "error" in json.loads(bad_body), bad_body


def test_quickstart(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    home = tmp_path / "home"
    assert "saved iris_clf:" in save_models("quickstart", home)
    with ExampleServer("quickstart", home, tmp_path) as server:
        server.wait_ready()
        answer = server.post_json("/classify", json.dumps([[5.1, 3.5, 1.4, 0.2],
                                                           [5.9, 3.0, 5.1, 1.8]]).encode(),
                                  "application/json")
        bad_status, bad_body = server.post("/classify", b"[[1, 2, 3]]", "application/json")
        assert server.stop() == 0, server.log()[-3000:]
    assert answer == [0, 2]
    assert bad_status == 400 and "shape" in json.loads(bad_body)["error"], bad_body


def test_inference_graph_v2_serves_seed_003_from_its_directory(tmp_path: Path) -> None:
    """Seed 003's services, unchanged but for the import, with `bentolite serve .`: each
    generator and the classifier in a worker process of its own."""
    import shutil

    project = tmp_path / "inference_graph_v2"
    shutil.copytree(EXAMPLES / "inference_graph_v2", project,
                    ignore=shutil.ignore_patterns("gpt2", "distilgpt2", "bert-base-uncased"))
    build = runpy.run_path(str(project / "build_models.py"))
    build["build_tiny_models"](project)
    with ExampleServer("inference_graph_v2", tmp_path / "home", tmp_path, target=".",
                       cwd=project, env={"HF_HUB_OFFLINE": "1"}) as server:
        server.wait_ready()
        answer = server.post_json("/generate_score",
                                  json.dumps({"original_sentence": SENTENCE}).encode(),
                                  "application/json")
        default = server.post_json("/generate_score", b"{}", "application/json")
        log = server.log()
        assert server.stop() == 0, log[-3000:]
    assert len(answer) == 2 and all(set(item) == {"generated", "score"} for item in answer)
    assert all(item["generated"].startswith(SENTENCE) for item in answer)
    assert all(0.0 <= item["score"] <= 1.0 for item in answer)
    assert all(item["generated"].startswith("I have an idea!") for item in default)
    for runner in ("gpt2", "distilgpt2", "bertbaseuncased"):
        assert f"runner {runner} worker 0 ready" in log
    # seed 003 passes max_length= and num_return_sequences= that generate() does not take
    assert log.count("takes no argument(s) max_length, num_return_sequences") == 2


def test_composition(tmp_path: Path) -> None:
    home = tmp_path / "home"
    printed = save_models("composition", home)
    assert "saved model_a:" in printed and "saved model_b:" in printed, printed
    rows = json.dumps({"input_data": [[1, 2], [3, 4]]}).encode()
    with ExampleServer("composition", home, tmp_path, target="service:EnsembleService") as server:
        server.wait_ready()
        assert server.post_json("/ensemble_predict", rows, "application/json") == [
            [2.0, 3.5], [5.0, 6.5]]  # (2x + (x + 1)) / 2
        assert server.stop() == 0, server.log()[-3000:]
    with ExampleServer("composition", home, tmp_path, target="service:InferenceService") as server:
        server.wait_ready()
        assert server.post_json("/predict", rows, "application/json") == [[3, 5], [7, 9]]
        assert server.stop() == 0, server.log()[-3000:]
    with ExampleServer("composition", home, tmp_path, target="service:MultiModelService") as server:
        server.wait_ready()
        assert server.post_json("/combined_process", b'{"input_data": [1, 2]}',
                                "application/json") == {"result_a": [2, 4], "result_b": [2, 3]}
        assert server.stop() == 0, server.log()[-3000:]
