"""Every exception facegate raises on purpose, and the exit code each one means. The bottom of the house.

Every error derives from :class:`FacegateError`, so a caller (the CLI, the daemon) can catch one class, print
``str(err)`` as a one-line message and exit with ``err.exit_code``. Where it helps a caller that does not know
facegate, an error also derives from the builtin it refines (as gpiozero's do): a bad image is a
``ValueError``, a missing or unreadable model an ``OSError``, a camera that times out a ``TimeoutError``,
the end of a replay an ``EOFError``. ``except ValueError`` in someone else's code keeps working.

This module imports nothing but the standard library, and every layer may import it.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes of every ``facegate`` command (``facegate --help`` lists them too)."""

    OK = 0  #: done, and every answer was yes
    ERROR = 1  #: bad input, a missing model, a store problem: the message says which
    USAGE = 2  #: wrong command-line arguments (argparse's own code)
    REFUSED = 3  #: some answer was no: not in the database, verification refused, a photo rejected
    INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT)


class FacegateError(Exception):
    """Base class of every error facegate raises on purpose. ``str(err)`` is a one-line message."""

    #: What a command that ends with this error exits with.
    exit_code: ExitCode = ExitCode.ERROR


# -- images, faces and models ---------------------------------------------------------------------------------


class ImageError(FacegateError, ValueError):
    """An image could not be read: missing, empty, corrupt, too large, or of an unsupported shape or type."""


class NoFaceError(FacegateError, ValueError):
    """The image holds no face the detector could find."""


class ModelError(FacegateError, OSError):
    """A model file is missing, does not match its card or hash, or cannot be run."""


class RuntimeMissingError(FacegateError, ImportError):
    """No TFLite runtime (ai-edge-litert, tflite-runtime or TensorFlow) is installed, or an unknown one was named.

    An ``ImportError`` rather than a :class:`ModelError`: the model may be fine, the machine lacks the runtime
    (the two builtins cannot be combined in one class).
    """


class ModelCardError(ModelError, ValueError):
    """A model card is unreadable, malformed, edited after the build, or holds an absurd value."""


class WeightsError(FacegateError, OSError):
    """Pretrained weights could not be fetched, verified or loaded."""


class UnknownPersonError(FacegateError, LookupError):
    """A name that is not enrolled (verify, remove, rename)."""


# -- storage ----------------------------------------------------------------------------------------------------


class StoreError(FacegateError, OSError):
    """The encoding store cannot be opened, read or changed: missing, corrupt, locked, or from another model."""


class StoreInputError(StoreError, ValueError):
    """Bad input for the store: a name, an encoding, or an import file that is not a valid export."""


class OutboxError(FacegateError, OSError):
    """The event outbox cannot be opened, or is used after it was closed."""


class AccessLogError(FacegateError, OSError):
    """The access log cannot be opened or read: missing, not an access log, or used after it was closed."""


# -- devices ------------------------------------------------------------------------------------------------------


class CameraError(FacegateError, OSError):
    """The camera cannot be opened, stopped delivering frames, or delivered a frame that cannot be used."""


class CameraTimeout(CameraError, TimeoutError):
    """No new frame arrived within the timeout."""


class FrameError(CameraError):
    """One frame could not be used (a corrupt replay image); the camera itself is fine and goes on."""


class EndOfStream(CameraError, EOFError):
    """The source has no more frames and never will (a replay without ``loop``, the end of a video file)."""


class RelayError(FacegateError, OSError):
    """The relay or a door input pin is invalid, busy, or could not be switched."""


class BadgeReaderError(FacegateError, OSError):
    """The badge reader cannot be opened or stopped working (unplugged, no permission, its library missing)."""


# -- configuration and messaging --------------------------------------------------------------------------------


class ConfigError(FacegateError, ValueError):
    """The config file is missing, not TOML, or not a valid door config.

    ``str(err)`` has one line per problem: ``<file>:<line>: <key>: <reason>``; ``problems`` lists them.
    """

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class MqttError(FacegateError, ValueError):
    """A bad MQTT setting (a topic level, a TLS file) or a publisher used out of order."""


# -- operator tools ---------------------------------------------------------------------------------------------


class OptionalDependencyError(FacegateError, ImportError):
    """A feature needs a package that is not installed; the message says how to install it."""
