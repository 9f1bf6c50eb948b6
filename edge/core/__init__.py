"""Layer 1, the recognition core: pure numpy and OpenCV, no I/O beyond reading model files and given images.

``images`` (any picture in, RGB out), ``detect`` (BlazeFace), ``crop``, ``preprocess``, ``runtime`` (the TFLite
interpreter), ``modelcard``, ``encoder`` (FaceNet), ``pipeline`` (the one face pipeline every caller runs),
``gallery`` (the 1:N search), ``recognition`` (``img_to_encoding``, ``verify``, ``who_is_it``), ``names``,
``quality`` (the enrolment gate), ``decision`` (when the door opens), ``door_monitor`` (forced and held-open
alarms), ``events``, ``timing``. Nothing here imports a camera, GPIO, MQTT or storage module.
"""
