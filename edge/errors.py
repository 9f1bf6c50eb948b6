"""The one exception family of facegate.

Every error the product raises on purpose derives from :class:`FacegateError`, so a caller (the CLI,
the daemon) can catch one class, print ``str(err)`` as a one-line message and exit non-zero.
"""

from __future__ import annotations


class FacegateError(Exception):
    """Base class of every error facegate raises on purpose. ``str(err)`` is a one-line message."""


class ImageError(FacegateError):
    """An image could not be read: missing, empty, corrupt, or of an unsupported shape."""


class NoFaceError(FacegateError):
    """The image holds no face the detector could find."""


class ModelError(FacegateError):
    """A model file is missing, does not match its card or hash, or cannot be run."""


class RuntimeMissingError(ModelError):
    """No TFLite runtime (ai-edge-litert, tflite-runtime or TensorFlow) is installed."""


class WeightsError(FacegateError):
    """Pretrained weights could not be fetched, verified or loaded."""


class StoreError(FacegateError):
    """The encoding store cannot be opened, read or changed: missing, corrupt, locked, from another model, or
    bad input (a name, an encoding, an import file)."""
