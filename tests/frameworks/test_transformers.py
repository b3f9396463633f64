"""bentolite.transformers: pipelines (built-in and custom tasks) and pretrained objects."""
from __future__ import annotations

import os

import pytest

import bentolite
from bentolite.exceptions import BentoMLException

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


PROMPT = "the quick brown"
GREEDY = {"max_new_tokens": 6, "do_sample": False}


class LogitSumPipeline(transformers.Pipeline):
    """A custom task: the sum of a classifier's logits for each text."""

    def _sanitize_parameters(self, scale=None, **kwargs):
        return {}, {}, ({"scale": scale} if scale is not None else {})

    def preprocess(self, text):
        return self.tokenizer(text, return_tensors="pt")

    def _forward(self, inputs):
        return self.model(**inputs)

    def postprocess(self, outputs, scale=1.0):
        return {"logit_sum": round(float(outputs.logits.sum()) * scale, 6)}


def test_save_list_get_pipeline(saved_generator):
    got = bentolite.transformers.get("tiny-gpt2-generation:latest")
    assert got == saved_generator
    assert got in bentolite.models.list()
    assert got.info.module == "bentoml.transformers"
    assert got.info.api_version == "v2"
    assert got.info.options.task == "text-generation"
    assert got.info.options.pt == ("AutoModelForCausalLM",)
    assert got.info.context.framework_name == "transformers"
    assert got.info.context.framework_versions["transformers"] == transformers.__version__
    assert "torch" in got.info.context.framework_versions
    assert {name: sig.batchable for name, sig in got.info.signatures.items()} == {"__call__": False}
    for file in ("pipeline.v2.pkl", "config.json", "tokenizer.json", "model.safetensors"):
        assert os.path.isfile(got.path_of(file)), file


def test_generation_pipeline_loads_and_runs_like_the_original(saved_generator, generator):
    loaded = bentolite.transformers.load_model(saved_generator)
    assert isinstance(loaded, transformers.TextGenerationPipeline)
    expected = generator(PROMPT, **GREEDY)
    assert loaded(PROMPT, **GREEDY) == expected
    runnable = bentolite.transformers.get_runnable(saved_generator)()
    assert runnable.pipeline is runnable.model
    assert runnable.model.device.type == "cpu"
    assert runnable.__call__(PROMPT, **GREEDY) == expected
    # kwargs pass through to the pipeline call
    beams = {"max_new_tokens": 4, "num_beams": 2, "num_return_sequences": 2, "do_sample": False}
    out = runnable.__call__(PROMPT, **beams)
    assert len(out) == 2 and out == generator(PROMPT, **beams)
    short = runnable.__call__(PROMPT, max_length=12, do_sample=False)
    assert short == generator(PROMPT, max_length=12, do_sample=False)
    assert len(short[0]["generated_text"]) < len(runnable.__call__(PROMPT, max_new_tokens=30, do_sample=False)[0]["generated_text"])


def test_classification_pipeline_and_options_kwargs(saved_classifier, classifier):
    texts = ["good service", "bad service"]
    expected = classifier(texts)
    runnable = bentolite.transformers.get_runnable(saved_classifier)()
    assert runnable.__call__(texts) == expected
    assert {r["label"] for r in expected} <= {"NEGATIVE", "POSITIVE"}
    # options.kwargs are passed to pipeline() at load time
    all_scores = saved_classifier.with_options(kwargs={"top_k": None})
    assert all_scores.info.options.kwargs == {"top_k": None}
    out = bentolite.transformers.load_model(all_scores)(texts)
    assert [sorted(d["label"] for d in row) for row in out] == [["NEGATIVE", "POSITIVE"]] * 2


def test_pretrained_model_and_tokenizer(store_home, generator):
    saved_model = bentolite.transformers.save_model("tiny-gpt2-model", generator.model)
    saved_tokenizer = bentolite.transformers.save_model("tiny-gpt2-tokenizer", generator.tokenizer)
    assert saved_model.info.metadata["_framework"] == "pt"
    assert saved_model.info.metadata["_pretrained_class"] == "GPT2LMHeadModel"
    assert {"__call__", "forward", "generate"} <= set(saved_model.info.signatures)
    assert {"__call__", "encode", "decode", "batch_decode"} <= set(saved_tokenizer.info.signatures)
    assert os.path.isfile(saved_model.path_of("pretrained.v2.pkl"))

    tokenizer = bentolite.transformers.load_model(saved_tokenizer)
    assert tokenizer.encode(PROMPT) == generator.tokenizer.encode(PROMPT)
    model = bentolite.transformers.load_model(saved_model)
    ids = torch.tensor([generator.tokenizer.encode(PROMPT)])
    with torch.inference_mode():
        expected = generator.model(ids).logits
        assert torch.equal(model(ids).logits, expected)
    runnable = bentolite.transformers.get_runnable(saved_model)()
    assert not runnable.model.training
    assert torch.equal(runnable.__call__(ids).logits, expected)
    tok_runnable = bentolite.transformers.get_runnable(saved_tokenizer)()
    assert tok_runnable.decode(ids[0]) == generator.tokenizer.decode(ids[0])


def test_custom_pipeline_task_is_registered_on_load(store_home, classifier):
    from transformers.pipelines import PIPELINE_REGISTRY

    task = "tiny-logit-sum"
    custom = LogitSumPipeline(model=classifier.model, tokenizer=classifier.tokenizer, task=task)
    definition = {
        "impl": LogitSumPipeline,
        "pt": (transformers.AutoModelForSequenceClassification,),
        "default": {},
        "type": "text",
    }
    saved = bentolite.transformers.save_model("tiny-logit-sum", custom, task_name=task, task_definition=definition)
    assert saved.info.options.task == task
    assert saved.info.options.pt == ("AutoModelForSequenceClassification",)
    expected = custom("good service", scale=2.0)
    # as in a fresh process: the task is unknown to transformers until load_model registers it
    PIPELINE_REGISTRY.supported_tasks.pop(task)
    try:
        runnable = bentolite.transformers.get_runnable(saved)()
        assert isinstance(runnable.model, LogitSumPipeline)
        assert runnable.__call__("good service", scale=2.0) == expected
    finally:
        PIPELINE_REGISTRY.supported_tasks.pop(task, None)

    with pytest.raises(BentoMLException, match="task_name"):
        bentolite.transformers.save_model("bad-custom", custom, task_name="other-task", task_definition=definition)


def test_save_refuses_objects_without_save_pretrained():
    with pytest.raises(BentoMLException, match="save_pretrained"):
        bentolite.transformers.save_model("not-transformers", object())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU placement needs one")
def test_pipeline_runs_on_assigned_gpu(saved_generator, generator, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    runnable = bentolite.transformers.get_runnable(saved_generator)()
    assert runnable.model.device.type == "cuda"
    out = runnable.__call__(PROMPT, **GREEDY)
    assert isinstance(out[0]["generated_text"], str) and out[0]["generated_text"].startswith(PROMPT)


def test_bentoml_1_0_pipeline_format_still_loads(store_home, classifier):
    """A v1-format model: save_pretrained files and the task in options, no pickled class."""
    from bentolite.frameworks.transformers import TransformersOptions
    from bentolite.models import ModelContext, create

    with create(
        "bentoml-1-0-classifier",
        module="bentoml.transformers",
        api_version="v1",
        signatures={"__call__": {"batchable": False}},
        options=TransformersOptions(task="text-classification"),
        context=ModelContext(framework_name="transformers"),
    ) as model:
        classifier.save_pretrained(model.path)
    loaded = bentolite.transformers.load_model("bentoml-1-0-classifier:latest")
    assert loaded("good service") == classifier("good service")
