"""Where the commands find the models and the store without flags: a source checkout, or an installed door."""

from __future__ import annotations

import pytest

import edge.cli.context as context
from edge.cli import main


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """As after `pip install .` on a door: no checkout weights/, the service's state folder at a temp path."""
    monkeypatch.delenv("FACEGATE_MODELS", raising=False)
    monkeypatch.delenv("FACEGATE_STORE", raising=False)
    monkeypatch.setattr(context, "_REPO_WEIGHTS", tmp_path / "site-packages" / "weights")
    monkeypatch.setattr(context, "DEVICE_STATE_DIR", tmp_path / "var-lib-facegate")
    return tmp_path / "var-lib-facegate"


def test_an_installed_door_finds_its_models_and_store(installed):
    (installed / "models").mkdir(parents=True)
    (installed / "people.sqlite").write_bytes(b"")
    assert context.default_models_dir() == installed / "models"
    assert context.default_store() == installed / "people.sqlite"


def test_without_models_the_error_names_the_variable_and_the_flag(installed, capsys):
    assert main(["people", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "FACEGATE_MODELS" in err and "--model" in err


def test_a_checkout_uses_its_own_weights(monkeypatch):
    monkeypatch.delenv("FACEGATE_MODELS", raising=False)
    assert context.default_models_dir() == context._REPO_WEIGHTS and context._REPO_WEIGHTS.is_dir()
