"""The export file of the encoding store: what :meth:`EncodingStore.export` writes and ``import_`` reads back.

Format ``facegate-encodings-export``, version 1: one UTF-8 JSON object::

    {"format": "facegate-encodings-export", "version": 1, "exported": "<UTC ISO-8601>",
     "model_sha256": "<hex>", "embedding_size": 128, "vector_encoding": "base64-float32-le",
     "people": [{"name": "...", "added": "...", "updated": "...",
                 "groups": ["staff"], "valid_from": "2025-01-01" | null, "valid_until": "2025-06-30" | null,
                 "enabled": true, "badges": ["04A2B9C1"],
                 "encodings": [{"vector": "<base64>", "source": "..." | null,
                                "quality": 1.5 | null, "added": "..."}]}]}

Each ``vector`` is the standard base64 of the encoding's ``embedding_size`` float32 little-endian values
(exact: no decimal rounding). The file holds biometric data: it is written all or nothing with mode 0600.

This module holds the format's pydantic models (:class:`ExportFile`, :class:`ExportPerson`,
:class:`ExportEncoding`), :func:`read_export`, which reads and checks a whole file before anything is
imported, and :func:`write_export`. It knows nothing of SQLite: the store hands it rows and takes its models.

What a file may hold (what facegate has always accepted; only ``exported``, once ignored, is checked now):

* ``format``, ``version``, ``model_sha256``, ``embedding_size`` and ``vector_encoding`` are required; the model
  and the size must be the store's (checked before the people, so a file of another model says so).
* ``people`` is a list, possibly empty; a name appears once (after :func:`edge.core.names.check_name`, which it
  must pass); each person has a non-empty ``encodings`` list.
* a ``vector`` is valid base64 of exactly ``4 * embedding_size`` bytes, finite, with L2 norm 1 within the
  store's tolerance; ``source`` is a string or null; ``quality`` a finite number or null.
* times (``exported``, ``added``, ``updated``) are ISO-8601 strings or null / absent; one without a zone is
  taken as UTC; all are kept as UTC to the second. An absent ``added`` / ``updated`` becomes the import's time.
* keys the format does not define are ignored, at every level (as they always were).
* a person's access data (:mod:`edge.storage.access_data`) is optional, each field on its own: ``groups`` a list of
  group names, ``valid_from`` / ``valid_until`` ISO dates (the site's time zone, inclusive) or null, ``enabled``
  true or false, ``badges`` a list of badge ids, each badge of one person only in the file. A field left out leaves
  the store's value as it is (a file from before access data changes nobody's access). A facegate from before
  access data ignores these fields: import such files with this one.

Every refusal is a one-line :class:`edge.errors.StoreInputError` that names the file and the first bad item
in file order, e.g. ``staff.json is not a valid facegate export: people[3].encodings[0].vector is not base64``
(a name that appears twice is reported once every item is valid). A document nested too deeply for Python's
JSON parser is refused the same way, never with a ``RecursionError``. A file that cannot be read at all is a
:class:`edge.errors.StoreError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from edge.core.access import check_badge_id, check_group
from edge.core.names import check_name
from edge.errors import StoreError, StoreInputError
from edge.files import write_bytes_atomic

log = logging.getLogger(__name__)

EXPORT_FORMAT: Final = "facegate-encodings-export"
EXPORT_VERSION: Final = 1
VECTOR_ENCODING: Final = "base64-float32-le"


def _utc(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _utc_time(value: str) -> str:
    """An ISO-8601 time as a UTC ISO-8601 string to the second; a time without zone is taken as UTC."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"is not an ISO-8601 time: {_shown(value)}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        return _utc(when)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, before year 1 in UTC
        raise ValueError(f"is out of range: {_shown(value)}") from None


def _name(value: str) -> str:
    try:
        return check_name(value)
    except StoreInputError as err:
        raise ValueError(str(err).removeprefix("name ")) from None  # the location says "...name"


_Time = Annotated[str, AfterValidator(_utc_time)]


def _iso_date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"is not a date YYYY-MM-DD: {_shown(value)}") from None


def _core_check(check: Any) -> Any:
    """A check of :mod:`edge.core.access` as a validator whose message follows the item's location."""
    def validate(value: str) -> str:
        try:
            return check(value)
        except ValueError as err:
            raise ValueError(f"is invalid: {err}") from None
    return AfterValidator(validate)


_Date = Annotated[str, AfterValidator(_iso_date)]
_Group = Annotated[str, _core_check(check_group)]
_Badge = Annotated[str, _core_check(check_badge_id)]


class _Strict(BaseModel):
    """No type coercion (``"1.5"`` is not a number); unknown keys ignored; inputs not echoed by pydantic."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, hide_input_in_errors=True)


class ExportEncoding(_Strict):
    """One encoding: ``vector`` is its ``embedding_size`` float32 little-endian values (base64 in the file)."""

    vector: bytes
    source: str | None = None
    quality: Annotated[float, Field(allow_inf_nan=False)] | None = None
    added: _Time | None = None

    @field_validator("vector", mode="plain")
    @classmethod
    def _decode_vector(cls, value: Any, info: ValidationInfo) -> bytes:
        """Needs ``context={"embedding_size": int, "norm_tolerance": float}`` (see :func:`read_export`)."""
        if not info.context or "embedding_size" not in info.context or "norm_tolerance" not in info.context:
            raise RuntimeError("ExportEncoding needs context={'embedding_size': ..., 'norm_tolerance': ...}")
        size, tolerance = info.context["embedding_size"], info.context["norm_tolerance"]
        if not isinstance(value, str):
            raise ValueError(f"must be a base64 string, got {_json_type(value)}")
        try:
            blob = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("is not base64") from None
        if len(blob) != 4 * size:
            raise ValueError(f"is {len(blob)} bytes, not {size} float32 values ({4 * size} bytes)")
        vector = np.frombuffer(blob, "<f4").astype(np.float64)
        if not np.isfinite(vector).all():
            raise ValueError("holds a non-finite value (NaN or infinity)")
        norm = float(np.linalg.norm(vector))
        if abs(norm - 1.0) > tolerance:
            raise ValueError(f"has L2 norm {norm:.4g}, not 1 (encodings are L2-normalised)")
        return blob

    @field_serializer("vector")
    def _encode_vector(self, vector: bytes) -> str:
        return base64.b64encode(vector).decode("ascii")


class ExportPerson(_Strict):
    """One person: the stored form of their ``name``, first enrolment and last change, and their encodings."""

    name: Annotated[str, AfterValidator(_name)]
    added: _Time | None = None
    updated: _Time | None = None
    groups: list[_Group] | None = None
    valid_from: _Date | None = None
    valid_until: _Date | None = None
    enabled: bool | None = None
    badges: list[_Badge] | None = None
    encodings: list[ExportEncoding] = Field(min_length=1)

    @model_validator(mode="after")
    def _validity_in_order(self) -> ExportPerson:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError(f"valid_until {self.valid_until} is before valid_from {self.valid_from}")
        return self

    def access_fields(self) -> dict[str, Any]:
        """The access data the file gives for this person (``None``: the file leaves that field out)."""
        return {"groups": self.groups, "valid_from": self.valid_from, "valid_until": self.valid_until,
                "enabled": self.enabled, "badges": self.badges}


class ExportHeader(_Strict):
    """What the file is, and which model made its encodings: checked before its people are read."""

    format: Literal["facegate-encodings-export"]  # EXPORT_FORMAT (a Literal takes no names)
    version: Literal[1]  # EXPORT_VERSION; compared as before: 1.0 and true equal 1
    exported: _Time | None = None
    model_sha256: str
    embedding_size: int
    vector_encoding: Literal["base64-float32-le"]  # VECTOR_ENCODING


class ExportFile(ExportHeader):
    """A whole export file."""

    people: list[ExportPerson]

    @model_validator(mode="after")
    def _each_person_once(self) -> ExportFile:
        first: dict[str, int] = {}
        for i, person in enumerate(self.people):
            j = first.setdefault(person.name, i)
            if j != i:
                raise ValueError(f"people[{i}].name {person.name!r} appears twice (people[{j}] too)")
        badges: dict[str, int] = {}
        for i, person in enumerate(self.people):
            for badge in person.badges or ():
                j = badges.setdefault(badge, i)
                if j != i:
                    raise ValueError(f"people[{i}].badges: a badge of people[{j}] too (a badge is one person's)")
        return self


def read_export(path: Path, *, model_sha256: str, embedding_size: int, norm_tolerance: float) -> ExportFile:
    """Read and check a whole export file before anything is imported.

    Args:
        path: the file.
        model_sha256: the store's lower-case hex model sha256: the file's must be the same (any case).
        embedding_size: the store's values per encoding: the file's must be the same.
        norm_tolerance: how far from 1 a vector's L2 norm may be.

    Raises:
        StoreError: the file cannot be read.
        StoreInputError: it is not JSON (or nested too deeply to parse), not a valid export, or from another
            model or embedding size; the message names the file and the first bad item.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        document = json.loads(data)
    except RecursionError:
        raise StoreInputError(f"{path} is not a facegate export: its JSON is nested too deeply to read") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise StoreInputError(f"{path} is not a facegate export: not JSON ({err})") from None
    header = _validate(ExportHeader, document, path)
    if header.model_sha256.lower() != model_sha256:
        raise StoreInputError(f"{path} holds encodings made by model {header.model_sha256[:12]}, this store holds "
                              f"model {model_sha256[:12]}; encodings from different models are never mixed")
    if header.embedding_size != embedding_size:
        raise StoreInputError(f"{path} holds encodings of {header.embedding_size!r} values, "
                              f"this store {embedding_size}")
    export = _validate(ExportFile, document, path,
                       context={"embedding_size": embedding_size, "norm_tolerance": norm_tolerance})
    log.debug("read export %s: %s people, %s encoding(s)", path, len(export.people),
              sum(len(p.encodings) for p in export.people))
    return export


def write_export(path: Path, *, model_sha256: str, embedding_size: int,
                 people: Iterable[tuple[int, str, str, str]],
                 encodings: Iterable[tuple[int, bytes, str | None, float | None, str]],
                 access: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Write an export file all or nothing, mode 0600, stamped with the model and the time now.

    Args:
        path: the file.
        model_sha256, embedding_size: the store's stamp.
        people: ``(person id, name, added, updated)`` rows, in the order they are written.
        encodings: ``(person id, vector, source, quality, added)`` rows, ``vector`` the float32 little-endian
            bytes, in the order they are written under their person. A person without any is written with
            an empty list (which :func:`read_export` refuses: the store never holds one).
        access: each person's access data by name (:func:`edge.storage.access_data.export_fields`), or ``None``.

    The rows come from the store itself: they are not checked again (``model_construct``).

    Raises:
        StoreError: the file cannot be written (``path`` is left as it was).
    """
    by_person: dict[int, list[ExportEncoding]] = {}
    for person, vector, source, quality, added in encodings:
        by_person.setdefault(person, []).append(
            ExportEncoding.model_construct(vector=vector, source=source, quality=quality, added=added))
    document = ExportFile.model_construct(
        format=EXPORT_FORMAT, version=EXPORT_VERSION, exported=_utc(datetime.now(timezone.utc)),
        model_sha256=model_sha256, embedding_size=embedding_size, vector_encoding=VECTOR_ENCODING,
        people=[ExportPerson.model_construct(name=name, added=added, updated=updated,
                                             **(access or {}).get(name, {}), encodings=by_person.get(pid, []))
                for pid, name, added, updated in people])
    data = json.dumps(document.model_dump(mode="json"), ensure_ascii=False, indent=1).encode("utf-8")
    try:
        write_bytes_atomic(path, data, mode=0o600)
    except OSError as err:
        raise StoreError(f"cannot write {path}: {err.strerror or err}") from None


# -- pydantic's errors as one line ----------------------------------------------------------------------------


def _validate(model: type[BaseModel], document: Any, path: Path, context: dict | None = None) -> Any:
    try:
        return model.model_validate(document, context=context)
    except ValidationError as err:
        raise StoreInputError(f"{path} is not a valid facegate export: {_first_problem(err)}") from None


_REASONS = {
    "missing": "is missing",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be finite",
    "too_short": "must not be empty",
}


def _first_problem(err: ValidationError) -> str:
    """The first of pydantic's errors (the first bad item, in file order) as ``"<where> <reason>"``."""
    error = err.errors(include_url=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    kind, value = error["type"], error.get("input")
    cause = (error.get("ctx") or {}).get("error")
    if kind == "value_error" and cause is not None:
        reason = str(cause)
        return f"{where} {reason}" if where else reason  # a model-level check names its items itself
    if kind == "literal_error":
        reason = f"must be {error['ctx']['expected']}, got {_shown(value)}"
    elif kind in _REASONS:
        reason = _REASONS[kind]
        if kind.endswith("_type"):
            reason += f", got {_json_type(value)}"
    else:
        reason = f"is invalid: {error['msg']}"
    return f"{where or 'the document'} {reason}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A scalar as it appears in the file (long strings cut); anything else as its JSON type (never a deep repr)."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, (bool, int, float)):
        text = json.dumps(value)
    else:
        return _json_type(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
