"""Layer 3, measuring (shared with convert/): labelled ``photos`` through the face pipeline, ``metrics``,
``calibration`` (which threshold?), ``evaluation`` (how well?), ``plots`` (matplotlib, an optional extra),
``bench`` (timing the pipeline as the door runs it) and a terminal ``progress`` bar."""
