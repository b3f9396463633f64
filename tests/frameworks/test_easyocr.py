"""bentolite.easyocr: a Reader saved as weight files, reloaded offline, reads rendered text."""
from __future__ import annotations

import os

import numpy as np
import pytest

import bentolite
from bentolite.exceptions import BentoMLException

easyocr = pytest.importorskip("easyocr")
pytest.importorskip("easyocr_en_models")

@pytest.fixture(scope="session")
def ocr_runnable(saved_reader):
    return bentolite.easyocr.get_runnable(saved_reader)()


def test_save_list_get(saved_reader):
    got = bentolite.easyocr.get("tiny-ocr-en")
    assert got == saved_reader and got in bentolite.models.list("tiny-ocr-en")
    assert got.info.module == "bentoml.easyocr"
    assert got.info.context.framework_name == "easyocr"
    assert got.info.context.framework_versions == {"easyocr": easyocr.__version__}
    options = got.info.options
    assert options.lang_list == ["en"]
    assert (options.recog_network, options.detect_network) == ("standard", "craft")
    assert {name: sig.batchable for name, sig in got.info.signatures.items()} == {
        "detect": False,
        "readtext": False,
        "readtextlang": False,
        "recognize": False,
        "readtext_batched": True,
    }
    assert sorted(os.listdir(got.path_of("weights"))) == ["craft_mlt_25k.pth", "english_g2.pth"]


def test_reloads_offline_from_the_store_and_reads_text(saved_reader, reader, text_image, ocr_text, ocr_runnable):
    loaded = ocr_runnable.model
    assert isinstance(loaded, easyocr.Reader) and loaded is not reader
    assert loaded.model_storage_directory == saved_reader.path_of("weights")
    assert loaded.download_enabled is False
    expected = reader.readtext(text_image, detail=0)
    assert expected == [ocr_text]
    assert loaded.readtext(text_image, detail=0) == expected


def test_runnable_methods_match_the_reader(reader, text_image, ocr_text, ocr_runnable):
    runnable = ocr_runnable
    assert runnable.device == "cpu"
    assert runnable.readtext(text_image, detail=0) == [ocr_text]
    # easyocr 1.7's readtextlang lists a relative 'characters/' folder and fails outside
    # easyocr's source tree; the runnable passes the call (and its error) through unchanged.
    with pytest.raises(FileNotFoundError, match="characters"):
        runnable.readtextlang(text_image, detail=0)
    boxes = runnable.detect(text_image)
    assert [np.asarray(b).tolist() for b in boxes[0]] == [np.asarray(b).tolist() for b in reader.detect(text_image)[0]]
    grey = text_image.mean(axis=2).astype(np.uint8)
    assert runnable.recognize(grey, detail=0) == reader.recognize(grey, detail=0)
    batched = runnable.readtext_batched([text_image, text_image], detail=0)
    assert batched == [[ocr_text], [ocr_text]]
    assert type(runnable).bentoml_runnable_methods__["readtext_batched"].config.batchable is True


def test_save_refuses_other_objects_and_unknown_languages(reader):
    with pytest.raises(TypeError, match="easyocr.Reader"):
        bentolite.easyocr.save_model("not-a-reader", object())

    odd = easyocr.Reader.__new__(easyocr.Reader)
    odd.model_lang = "latin"
    odd.quantize = (True,)
    odd.cudnn_benchmark = False
    with pytest.raises(BentoMLException, match="lang_list"):
        bentolite.easyocr.save_model("reader-without-langs", odd)
