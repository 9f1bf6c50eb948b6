"""``facegate``: the operator's command line, the top of the house.

One module per command (``enroll``, ``people``, ``identify``, ``verify``, ``calibrate``, ``evaluate``, ``bench``,
``run``, ``check-config``, ``relay-off``); :mod:`edge.cli.context` holds what they share (the common options,
where the models and the store are, output as text or JSON); :mod:`edge.cli.app` builds the parser of the
command that runs and maps exceptions to exit codes (:class:`edge.errors.ExitCode`: each exception carries its
own). Exit codes: 0 done, 1 error, 2 bad arguments, 3 some answer was no, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The ``facegate`` console script: :func:`edge.cli.app.main`."""
    from edge.cli.app import main as run

    return run(argv)
