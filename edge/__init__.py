"""facegate's device side: detection, encoding and recognition on the TFLite runtime.

Importing ``edge`` has no side effects and needs neither TensorFlow nor any hardware library: the
TFLite runtime, the camera and the GPIO backends are imported only when they are first used.
"""

from edge.errors import FacegateError

__all__ = ["FacegateError"]
