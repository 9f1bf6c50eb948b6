"""Layer 2, what the door keeps on disk: the SQLite encoding store (``store``, ``sqlite``, ``inputs``), its export
file (``transfer``), ``enrolment`` (photos through the quality gate into the store) and the MQTT ``outbox``."""
