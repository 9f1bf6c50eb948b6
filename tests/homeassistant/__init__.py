"""A real Home Assistant core for tests: its venv (:mod:`tests.homeassistant.venv`, built by ``./dev ha-setup``)
and one running instance on loopback (:mod:`tests.homeassistant.server`). No pytest import: a benchmark may use
it too."""
