"""Layer 4, the door daemon: ``loop`` (camera frame -> face pipeline -> decision -> relay, and events) and
``runner`` (opens camera, model, store, relay and MQTT from the config in order, and closes them in reverse,
with the relay off on every way out)."""
