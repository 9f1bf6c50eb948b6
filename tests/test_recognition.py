"""verify and who_is_it on the real photos with the real int8 model, and against the seed's loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.core.recognition import (
    START_DISTANCE,
    UnknownPersonError,
    database_matrix,
    img_to_encoding,
    nearest,
    verify,
    who_is_it,
)
from edge.errors import ImageError, NoFaceError
from tests.conftest import photo_paths


def seed_who_is_it(encoding, database, threshold):
    """The seed's who_is_it, literally: a loop from min_dist = 100."""
    min_dist, identity = 100, None
    for name, encodings in database.items():
        for db_enc in np.atleast_2d(encodings):
            dist = np.linalg.norm(encoding - db_enc)
            if dist < min_dist:
                min_dist, identity = dist, name
    return (min_dist, None) if min_dist > threshold else (min_dist, identity)


def test_encoding_is_a_unit_vector_of_the_cards_size(face_model, photos_dir):
    _, path = photo_paths(photos_dir, "val")[0]
    enc = img_to_encoding(path, face_model)
    assert enc.shape == (face_model.embedding_size,) == (128,)
    assert enc.dtype == np.float32
    assert np.linalg.norm(enc) == pytest.approx(1.0, abs=1e-5)


def test_path_bytes_and_array_give_the_same_encoding(face_model, photos_dir):
    _, path = photo_paths(photos_dir, "val")[3]
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    a = img_to_encoding(path, face_model)
    b = img_to_encoding(path.read_bytes(), face_model)
    c = img_to_encoding(rgb, face_model)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-6)


def test_who_is_it_identifies_every_val_photo(face_model, celebrity_db, photos_dir):
    results = [(person, *who_is_it(path, celebrity_db, face_model)) for person, path in photo_paths(photos_dir, "val")]
    misses = [(p, d, who) for p, d, who in results if who != p]
    assert len(results) == 25
    assert misses == [], f"misidentified or rejected: {misses}"


def test_verify_accepts_true_claims_and_refuses_false_ones(face_model, celebrity_db, photos_dir):
    val = photo_paths(photos_dir, "val")
    people = sorted(celebrity_db)
    true_claims = [verify(path, person, celebrity_db, face_model) for person, path in val]
    false_claims = [verify(path, people[(people.index(person) + 1) % len(people)], celebrity_db, face_model)
                    for person, path in val]
    assert sum(open_ for _, open_ in true_claims) >= 23
    assert not any(open_ for _, open_ in false_claims)
    assert max(d for d, _ in true_claims) < min(d for d, _ in false_claims) + 0.3


def test_a_stranger_is_not_in_the_database(face_model, celebrity_db, photos_dir):
    """Each person in turn is left out of the database and must be rejected as a stranger."""
    accepted = []
    for stranger in celebrity_db:
        db = {name: enc for name, enc in celebrity_db.items() if name != stranger}
        for person, path in photo_paths(photos_dir, "val"):
            if person == stranger:
                dist, who = who_is_it(path, db, face_model)
                if who is not None:
                    accepted.append((stranger, who, dist))
    assert accepted == []


def test_vectorised_search_equals_the_seed_loop_on_real_encodings(face_model, celebrity_db, photos_dir):
    for _, path in photo_paths(photos_dir, "val"):
        enc = img_to_encoding(path, face_model)
        expected = seed_who_is_it(enc, celebrity_db, face_model.threshold)
        got = who_is_it(path, celebrity_db, face_model)
        assert got[1] == expected[1]
        assert got[0] == pytest.approx(float(expected[0]), abs=1e-6)


def test_vectorised_search_equals_the_seed_loop_on_random_databases():
    rng = np.random.default_rng(7)
    for trial in range(50):
        people = int(rng.integers(1, 30))
        db = {f"p{i}": rng.standard_normal((int(rng.integers(1, 6)), 16)).astype(np.float32) for i in range(people)}
        db = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in db.items()}
        probe = rng.standard_normal(16).astype(np.float32)
        probe /= np.linalg.norm(probe)
        threshold = float(rng.uniform(0.5, 1.5))
        dist, name = nearest(probe, *database_matrix(db))
        expected = seed_who_is_it(probe, db, threshold)
        assert (name if dist <= threshold else None) == expected[1], trial
        assert dist == pytest.approx(float(expected[0]), abs=1e-6)


def test_empty_database_starts_from_100():
    assert nearest(np.ones(4, np.float32) / 2, *database_matrix({})) == (START_DISTANCE, None)


def test_verify_of_someone_not_enrolled(face_model, celebrity_db, photos_dir):
    _, path = photo_paths(photos_dir, "val")[0]
    with pytest.raises(UnknownPersonError, match="'nobody' is not enrolled"):
        verify(path, "nobody", celebrity_db, face_model)


def test_largest_face_wins_in_a_photo_with_two_faces(face_model, celebrity_db, photos_dir):
    val = dict(photo_paths(photos_dir, "val"))
    small = cv2.cvtColor(cv2.imread(str(val["madonna"])), cv2.COLOR_BGR2RGB)
    big = cv2.cvtColor(cv2.imread(str(val["elton_john"])), cv2.COLOR_BGR2RGB)
    small = cv2.resize(small, None, fx=0.8, fy=0.8)  # both faces detectable, Elton John's larger
    canvas = np.zeros((max(big.shape[0], small.shape[0]), big.shape[1] + small.shape[1], 3), np.uint8)
    canvas[: big.shape[0], : big.shape[1]] = big
    canvas[: small.shape[0], big.shape[1]:] = small
    assert len(face_model.encode_faces(canvas)) == 2
    assert who_is_it(canvas, celebrity_db, face_model)[1] == "elton_john"


def test_no_face_and_bad_images_are_clear_errors(face_model, celebrity_db, tmp_path):
    with pytest.raises(NoFaceError, match="no face found"):
        who_is_it(np.full((240, 320, 3), 128, np.uint8), celebrity_db, face_model)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageError):
        who_is_it(bad, celebrity_db, face_model)
