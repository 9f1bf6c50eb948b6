"""Model cards: the JSON file beside each ``.tflite`` that says what the model is and how to feed it.

The card is written by ``facegate-convert build`` (:mod:`convert.build`) and only read here, on the device. It
carries the model's sha256 (a model that does not match its card is refused), its input and output tensors with
their quantisation, the preprocessing it was built and checked with, the distance threshold measured for it, and
the file of reference strangers encoded with it. The embedding size comes from here, never from a constant.

A card cannot open the door. Reading one (:meth:`ModelCard.read`, :meth:`ModelCard.for_model`) checks it whole
before anything uses it, and any problem is one :class:`edge.errors.ModelCardError` line naming the card and the
key (``<card>: threshold.value: 5.0 is outside 0.3..1.6 ...``):

- the JSON itself: at most :data:`MAX_CARD_BYTES`, UTF-8, no key twice, nested at most :data:`MAX_DEPTH` levels
  (a deeper document is refused before Python's recursion limit is reached);
- ``format`` must be :data:`CARD_FORMAT` (a format-1 card is from an older build: rebuild);
- the schema of every key the device reads (:func:`validate_card`), the threshold a finite number within
  :data:`THRESHOLD_RANGE`;
- ``card_sha256``, the sha256 of the card's canonical JSON without that key (:func:`card_checksum`): a card
  edited after the build is refused.

A :class:`ModelCard` constructed directly (the converter, while it evaluates a model whose card is not finished)
is not checked.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelCardError, ModelError
from edge.files import sha256_file

#: The card format this facegate writes and reads. 2: validated schema, ``card_sha256``, reference strangers.
CARD_FORMAT = 2
#: The key holding the card's own checksum (see :func:`card_checksum`).
CHECKSUM_KEY = "card_sha256"
#: The range a card's distance threshold must lie in. An L2 distance between unit-length encodings lies in
#: 0..2 (2: opposite vectors); a threshold outside this range lets nobody in, or everybody.
THRESHOLD_RANGE = (0.3, 1.6)
#: The deepest nesting a card may have (a built card nests 3 levels: ``threshold.pairs.genuine``).
MAX_DEPTH = 8
#: The largest card file read, in bytes (a built card has about 3 kB).
MAX_CARD_BYTES = 1 << 20
#: The largest tensor dimension a card may declare (crop side, embedding size).
MAX_DIMENSION = 4096
#: Tensor types a FaceNet TFLite model may take or give.
TENSOR_DTYPES = ("float32", "float16", "int8", "uint8")
#: How far from 1 the L2 norm of a reference stranger's encoding may be.
UNIT_NORM_TOLERANCE = 1e-3

_HEX64 = re.compile(r"[0-9a-f]{64}")
_VARIANT = re.compile(r"[a-z0-9_]{1,32}")
_REBUILD = "rebuild with facegate-convert build"


def card_path(model_path: str | Path) -> Path:
    """Where the card of ``model_path`` lives: ``facenet_int8.tflite`` -> ``facenet_int8.card.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".card.json")


def strangers_path(model_path: str | Path) -> Path:
    """Where the build writes the reference strangers of ``model_path``: ``facenet_int8.strangers.npy``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".strangers.npy")


def canonical_json(data: Any) -> bytes:
    """The canonical JSON of ``data``, as UTF-8: ``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``. The same document gives the same bytes however its file is indented or ordered."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def card_checksum(data: dict[str, Any]) -> str:
    """Hex sha256 of the canonical JSON (:func:`canonical_json`) of the card ``data`` without its ``card_sha256``."""
    return hashlib.sha256(canonical_json({k: v for k, v in data.items() if k != CHECKSUM_KEY})).hexdigest()


def seal_card(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of the card ``data`` with its ``card_sha256`` set (the build's last step before writing it)."""
    sealed = {k: v for k, v in data.items() if k != CHECKSUM_KEY}
    sealed[CHECKSUM_KEY] = card_checksum(sealed)
    return sealed


# -- validation ---------------------------------------------------------------------------------------------------


class CardChecker:
    """Reads the keys of one card (a model card or a liveness card), raising a one-line :class:`ModelCardError`
    ``<card>: <key>: <reason>``."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, reason: str) -> ModelCardError:
        return ModelCardError(f"{self.path}: {key}: {reason}")

    def get(self, obj: dict[str, Any], key: str, where: str) -> Any:
        if key not in obj:
            raise self.error(_join(where, key), "missing")
        return obj[key]

    def object(self, obj: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
        value = self.get(obj, key, where)
        if not isinstance(value, dict):
            raise self.error(_join(where, key), f"must be an object, not {_describe(value)}")
        return value

    def string(self, obj: dict[str, Any], key: str, where: str = "", pattern: re.Pattern[str] | None = None,
               expect: str = "a non-empty string") -> str:
        value = self.get(obj, key, where)
        if not isinstance(value, str) or not value or (pattern is not None and not pattern.fullmatch(value)):
            raise self.error(_join(where, key), f"{_show(value)} is not {expect}")
        return value

    def integer(self, obj: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
        value = self.get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(_join(where, key), f"{_show(value)} is not an integer")
        if not low <= value <= high:
            raise self.error(_join(where, key), f"{value} is outside {low}..{high}")
        return value

    def number(self, obj: dict[str, Any], key: str, where: str = "", low: float | None = None,
               high: float | None = None, why: str = "") -> float:
        value = self.get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(_join(where, key), f"{_show(value)} is not a number")
        if not math.isfinite(value):
            raise self.error(_join(where, key), f"{value} is not a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{low if low is not None else ''}..{high if high is not None else ''}"
            raise self.error(_join(where, key), f"{value} is outside {span}{why}")
        return float(value)

    def boolean(self, obj: dict[str, Any], key: str, where: str = "") -> bool:
        value = self.get(obj, key, where)
        if not isinstance(value, bool):
            raise self.error(_join(where, key), f"{_show(value)} is not true or false")
        return value

    def shape(self, obj: dict[str, Any], key: str, where: str, rank: int) -> list[int]:
        value = self.get(obj, key, where)
        ok = (isinstance(value, list) and len(value) == rank
              and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_DIMENSION for n in value))
        if not ok:
            raise self.error(_join(where, key), f"{_show(value)} is not a list of {rank} sizes in 1..{MAX_DIMENSION}")
        return list(value)

    def tensor(self, card: dict[str, Any], key: str, rank: int) -> list[int]:
        """``input`` ``(1, H, W, 3)`` or ``output`` ``(1, d)``: shape, dtype and quantisation."""
        tensor = self.object(card, key)
        shape = self.shape(tensor, "shape", key, rank)
        if shape[0] != 1 or (rank == 4 and shape[3] != 3):
            want = "[1, H, W, 3]" if rank == 4 else "[1, d]"
            raise self.error(f"{key}.shape", f"{shape} is not {want} (one RGB crop in, one encoding out)")
        dtype = self.get(tensor, "dtype", key)
        if dtype not in TENSOR_DTYPES:
            raise self.error(f"{key}.dtype", f"{_show(dtype)} is not one of {', '.join(TENSOR_DTYPES)}")
        self.number(tensor, "scale", key, low=0.0)
        self.integer(tensor, "zero_point", key, low=-(1 << 16), high=1 << 16)
        return shape


def validate_card(data: Any, path: str | Path) -> None:
    """Check a card's format and schema (not its checksum, not the model's sha256).

    Args:
        data: the parsed JSON document.
        path: the card's file, named in the messages.

    Raises:
        ModelCardError: one line, ``<card>: <key>: <reason>``, for the first problem found.
    """
    check = CardChecker(Path(path))
    if nesting_depth(data) > MAX_DEPTH:
        raise ModelCardError(f"{path}: nested more than {MAX_DEPTH} levels deep (a card nests at most "
                             f"{MAX_DEPTH}): not a facegate model card")
    if not isinstance(data, dict):
        raise ModelCardError(f"{path}: not a facegate model card (a JSON object), but {_describe(data)}")
    fmt = check.get(data, "format", "")
    if fmt == 1 and not isinstance(fmt, bool):
        raise check.error("format", f"1 is the card format of an older build: {_REBUILD}")
    if fmt != CARD_FORMAT or isinstance(fmt, bool):
        raise check.error("format", f"{_show(fmt)} is not a card format this facegate reads ({CARD_FORMAT})")
    check.string(data, CHECKSUM_KEY, pattern=_HEX64, expect="a sha256 (64 lowercase hex digits)")
    check.string(data, "sha256", pattern=_HEX64, expect="a sha256 (64 lowercase hex digits)")
    check.string(data, "variant", pattern=_VARIANT, expect="a variant name (a-z, 0-9, _)")
    in_shape = check.tensor(data, "input", 4)
    check.tensor(data, "output", 2)
    pre = check.object(data, "preprocessing")
    check.string(pre, "detector", "preprocessing")
    check.number(pre, "margin", "preprocessing", low=0.0, high=1.0)
    check.boolean(pre, "align", "preprocessing")
    crop = check.shape(pre, "crop_size", "preprocessing", 2)
    if crop != in_shape[1:3]:
        raise check.error("preprocessing.crop_size", f"{crop} is not the input's {in_shape[1:3]}")
    check.string(pre, "pixels", "preprocessing")
    check.string(pre, "output", "preprocessing")
    threshold = check.object(data, "threshold")
    low, high = THRESHOLD_RANGE
    check.number(threshold, "value", "threshold", low=low, high=high,
                 why=" (an L2 distance between unit-length encodings lies in 0..2)")
    if "reference_strangers" in data:
        ref = check.object(data, "reference_strangers")
        name = check.string(ref, "file", "reference_strangers")
        if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".npy"):
            raise check.error("reference_strangers.file", f"{_show(name)} is not a .npy file name beside the card")
        check.string(ref, "sha256", "reference_strangers", pattern=_HEX64, expect="a sha256 (64 lowercase hex digits)")
        check.integer(ref, "count", "reference_strangers", low=1, high=1_000_000)
        check.integer(ref, "skipped", "reference_strangers", low=0, high=1_000_000)
        check.string(ref, "source", "reference_strangers")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _show(value: Any) -> str:
    """A value for a one-line message: its JSON text, cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def nesting_depth(value: Any) -> int:
    """How many levels of objects and lists ``value`` nests (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:  # deeper than that is refused anyway: no need to walk it all
            stack.extend((child, level + 1) for child in children)
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


class _DuplicateKey(ValueError):
    pass


def read_sealed_card(path: str | Path, validate: Callable[[Any, Path], None], *, what: str = "model card") -> dict:
    """Read the card file ``path``: bounded size, UTF-8 JSON without duplicate keys or deep nesting, checked by
    ``validate(data, path)``, and its ``card_sha256`` (:func:`card_checksum`) matching its content.

    Raises:
        ModelError: there is no such file. ModelCardError: anything else wrong with it, in one line.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CARD_BYTES + 1)
    except FileNotFoundError as exc:
        raise ModelError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise ModelCardError(f"{path}: unreadable: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CARD_BYTES:
        raise ModelCardError(f"{path}: larger than {MAX_CARD_BYTES} bytes: not a facegate {what}")
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except RecursionError as exc:
        raise ModelCardError(f"{path}: nested too deeply (a card nests at most {MAX_DEPTH} levels): "
                             f"not a facegate {what}") from exc
    except _DuplicateKey as exc:
        raise ModelCardError(f"{path}: {exc}: the key appears twice") from exc
    except UnicodeDecodeError as exc:
        raise ModelCardError(f"{path}: not UTF-8 text (byte {exc.start}): not a facegate {what}") from exc
    except ValueError as exc:
        raise ModelCardError(f"{path}: not JSON ({exc}): not a facegate {what}") from exc
    validate(data, path)
    if data[CHECKSUM_KEY] != card_checksum(data):
        raise ModelCardError(f"{path}: edited after the build (checksum mismatch): {_REBUILD}")
    return data


# -- the card -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCard:
    """A parsed card; ``data`` holds the whole JSON document."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read and check the card file ``path``: JSON, format, schema and checksum (see the module docstring).

        Raises:
            ModelError: there is no such file. ModelCardError: anything else wrong with it, in one line.
        """
        path = Path(path)
        data = read_sealed_card(path, validate_card)
        return cls(path, data)

    @classmethod
    def for_model(cls, model_path: str | Path, *, verify: bool = True) -> ModelCard:
        """Read and check the card of ``model_path`` (:meth:`read`) and, with ``verify``, the model's sha256."""
        model_path = Path(model_path)
        path = card_path(model_path)
        if not model_path.is_file():
            raise ModelError(f"model file {model_path} does not exist (build it with 'facegate-convert build')")
        if not path.exists():
            raise ModelError(f"model {model_path.name} has no card {path.name} beside it")
        card = cls.read(path)
        if verify:
            actual = sha256_file(model_path)
            if actual != card.sha256:
                raise ModelError(
                    f"{model_path.name} does not match its card: sha256 {actual[:16]}..., card says "
                    f"{card.sha256[:16]}... (a different or damaged model file)"
                )
        return card

    @property
    def sha256(self) -> str:
        return self.data["sha256"]

    @property
    def variant(self) -> str:
        return self.data["variant"]

    @property
    def embedding_size(self) -> int:
        return int(self.data["output"]["shape"][-1])

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the face crop the model takes, in pixels."""
        shape = self.data["input"]["shape"]
        return int(shape[1]), int(shape[2])

    @property
    def threshold(self) -> float | None:
        """The L2 distance threshold measured for this model (always there in a card that was read), or
        ``None`` in an unfinished card."""
        value = (self.data.get("threshold") or {}).get("value")
        return None if value is None else float(value)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.data["preprocessing"]

    def reference_strangers(self) -> np.ndarray | None:
        """The encodings of the reference strangers the build made with this model, or ``None`` if it has none.

        They are people nobody enrolled (see ``weights/README.md``), encoded through the door's own pipeline;
        the door derives its 1:N threshold from how close they come to the enrolled people.

        Returns:
            float32 ``(n, d)``, one row of L2 norm 1 per stranger, ``n`` = the card's ``count``, ``d`` =
            :attr:`embedding_size`; read from the ``.npy`` file beside the card, never unpickled.

        Raises:
            ModelCardError: the file is missing, does not match the card's sha256, or holds no such array.
        """
        info = self.data.get("reference_strangers")
        if info is None:
            return None
        file = self.path.parent / str(info["file"])
        where = f"{self.path}: reference_strangers.file"
        if not file.is_file():
            raise ModelCardError(f"{where}: {file} is missing: copy it with the model, or {_REBUILD}")
        try:
            actual = sha256_file(file)
        except OSError as exc:
            raise ModelCardError(f"{where}: {file} is unreadable: {exc.strerror or exc}") from exc
        if actual != info["sha256"]:
            raise ModelCardError(f"{where}: {file.name} has sha256 {actual[:16]}..., the card says "
                                 f"{str(info['sha256'])[:16]}... (damaged or replaced): {_REBUILD}")
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ModelCardError(f"{where}: {file.name} is not a numpy array file ({exc})") from exc
        if not isinstance(array, np.ndarray):  # an .npz archive: close it, it is not what the build writes
            array.close()
        expected = (int(info["count"]), self.embedding_size)
        if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.shape != expected:
            got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
            raise ModelCardError(f"{where}: {file.name} holds {got}, the card says float32 {expected}")
        norms = np.linalg.norm(array, axis=1)
        if not (np.isfinite(array).all() and np.all(np.abs(norms - 1.0) <= UNIT_NORM_TOLERANCE)):
            raise ModelCardError(f"{where}: {file.name}: its rows are not unit-length encodings")
        return array
