"""facegate's device side, in layers; a module imports only from its own package and from layers below it.

====  ==========================  ==================================================================================
layer package                      what it holds
====  ==========================  ==================================================================================
0     ``edge.errors``,            every exception (with its exit code), hashing and all-or-nothing file writes
      ``edge.files``
1     ``edge.core``               the recognition core, pure: images, BlazeFace, crop, FaceNet on the TFLite
                                  runtime, the one face pipeline, verify / who_is_it, the door decision, the door
                                  monitor, events. No I/O beyond reading model files and the images it is given.
2     ``edge.storage``            the SQLite encoding store, its export format, enrolment, the event outbox
2     ``edge.devices``            hardware behind small interfaces: cameras, the relay, door inputs, gpiozero pins,
                                  systemd notify (each hardware library imported only when it is used)
2     ``edge.config``             the door's TOML config: strict pydantic models, one file per section
3     ``edge.mqtt``               events to the office over MQTT through the outbox; Home Assistant discovery
3     ``edge.eval``               measuring: photo sets, metrics, calibration, evaluation, charts, benchmarks
4     ``edge.daemon``             the door daemon: the loop, and the runner that opens and closes everything
5     ``edge.cli``                the ``facegate`` command, one module per sub-command
====  ==========================  ==================================================================================

Packages of one layer never import each other. ``tests/test_layers.py`` reads every import and fails on an
upward or sideways import and on a cycle. Importing ``edge`` or any package here has no side effects: nothing
heavy (a TFLite runtime, OpenCV's camera code, paho, gpiozero, picamera2) is imported until it is used.
"""
