"""The charts of ``facegate calibrate --plots`` (``roc.png``, ``distances.png``) and of ``facegate evaluate
--strangers --plots`` (``det.png``), drawn with matplotlib.

matplotlib is optional (the ``plots`` extra; a door device never needs it). It is imported only when a chart
is drawn, never when this module is imported, and only as :class:`matplotlib.figure.Figure` on an explicit
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`: pyplot and its global backend and figure state are
never touched, so drawing here changes nothing for other code in the process. Without matplotlib a chart
raises :class:`~edge.errors.OptionalDependencyError` with the command that installs it.

:func:`roc_figure` and :func:`distances_figure` return the figures, so a caller (a test) can read back what
was drawn; every data artist carries a ``gid`` naming it (``"pairs"``, ``"open_set"``, ``"recommended"``,
...). :func:`calibration_plots` draws both and writes them as PNG files, all or nothing. :func:`det_figure`
(FNIR against FPIR of the door's 1:N rule) is drawn and written by :func:`evaluation_plots`.

Distances are L2 between unit-length encodings (0..2); a face is accepted when its distance is below the
threshold. Rates are fractions 0..1. Sizes are ``(width, height)`` in pixels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import OptionalDependencyError
from edge.eval.calibration import COURSE_THRESHOLD
from edge.eval.evaluation import det_curve
from edge.eval.metrics import error_curve, rates_at
from edge.files import write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: What :class:`~edge.errors.OptionalDependencyError` says when matplotlib is missing.
INSTALL_HINT = "the plots need matplotlib: pip install 'facegate[plots]' (or pip install matplotlib)"
#: Pixels per inch of the PNG files (matplotlib sizes figures in inches).
DPI = 100
ROC_SIZE = (900, 620)
DISTANCES_SIZE = (900, 760)
DET_SIZE = (900, 700)

_BLUE, _ORANGE, _GREEN, _RED = "tab:blue", "tab:orange", "tab:green", "tab:red"
_PURPLE, _GREY = "tab:purple", "tab:grey"


def require_matplotlib() -> None:
    """Raise :class:`~edge.errors.OptionalDependencyError` now if matplotlib is missing (before any long work)."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError as exc:
        raise OptionalDependencyError(INSTALL_HINT) from exc


def _new_figure(size: tuple[int, int]) -> Figure:
    """A white figure of ``size`` pixels on its own Agg canvas, laid out by matplotlib's constrained layout."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    width, height = size
    if width < 300 or height < 200:
        raise ValueError(f"a chart needs at least 300x200 pixels, got {width}x{height}")
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def far_floor(impostor: np.ndarray) -> float:
    """Where a false-accept rate of 0 is drawn on the log axis: a power of ten below ``0.5 / len(impostor)``.

    No rate of ``len(impostor)`` (or fewer) values other than 0 lies at or below it, so a point there is a 0.
    """
    return float(10.0 ** np.floor(np.log10(0.5 / max(len(impostor), 1))))


def _percent_formatter(floor: float):
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _position) -> str:
        return "0" if value <= floor * (1 + 1e-9) else f"{100 * value:g}%"

    return FuncFormatter(label)


def roc_figure(distances: dict[str, np.ndarray], report: dict, *, course_threshold: float = COURSE_THRESHOLD,
               size: tuple[int, int] = ROC_SIZE) -> Figure:
    """Genuine acceptance (1 - FRR) against the false-accept rate (log x), for photo pairs and the open set.

    Args:
        distances: 1-D arrays ``genuine`` and ``impostor`` (pair distances), ``open_set_genuine`` and
            ``open_set_stranger`` (each photo's nearest other photo of the same / another person), as
            :func:`edge.eval.calibration.calibration` returns them.
        report: that function's report; ``report["recommended"]["threshold"]`` and ``report["pair_eer"]``
            (``rate``, ``threshold``) are used.
        course_threshold: a second threshold marked for comparison (default: the course's 0.7).
        size: ``(width, height)`` in pixels.

    Returns:
        The figure. Its lines: ``gid`` ``"pairs"`` and ``"open_set"`` hold :func:`~edge.eval.metrics.error_curve`
        as ``x = max(far, floor)``, ``y = 1 - frr`` (``floor`` from :func:`far_floor` of the impostor pairs: a
        false-accept rate of 0 is drawn at the left edge); single-point markers ``"recommended"`` and
        ``"course"`` at the open-set rates of those thresholds, ``"pair_eer"`` at the pair EER.
    """
    floor = far_floor(distances["impostor"])
    figure = _new_figure(size)
    ax = figure.add_subplot()
    curves = (("pairs", "photo pairs", distances["genuine"], distances["impostor"], _BLUE),
              ("open_set", "open set: a stranger against everyone enrolled", distances["open_set_genuine"],
               distances["open_set_stranger"], _ORANGE))
    for gid, label, genuine, impostor, colour in curves:
        _, far, frr = error_curve(genuine, impostor)
        ax.plot(np.maximum(far, floor), 1.0 - frr, color=colour, linewidth=2, label=label, gid=gid, zorder=2)
    chosen = float(report["recommended"]["threshold"])
    for gid, name, threshold, colour in (("recommended", "recommended", chosen, _PURPLE),
                                         ("course", "course", course_threshold, _GREY)):
        o = rates_at(distances["open_set_genuine"], distances["open_set_stranger"], threshold)
        ax.plot([max(o.far, floor)], [1.0 - o.frr], linestyle="none", marker="o", markersize=9,
                markerfacecolor="none", markeredgewidth=2.5, color=colour, gid=gid, zorder=3, clip_on=False,
                label=f"{name} {threshold:.3f} (open set): {100 * o.far:.1f}% strangers in, "
                      f"{100 * (1 - o.frr):.1f}% genuine in")
    eer = report["pair_eer"]
    ax.plot([max(eer["rate"], floor)], [1.0 - eer["rate"]], linestyle="none", marker="s", markersize=8,
            markerfacecolor="none", markeredgewidth=2.5, color=_BLUE, gid="pair_eer", zorder=3, clip_on=False,
            label=f"pair EER {100 * eer['rate']:.1f}% at threshold {eer['threshold']:.3f}")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.xaxis.set_major_formatter(_percent_formatter(floor))
    ax.grid(True, which="major", color="0.88")
    ax.set_xlabel("false accept rate (impostor pairs / strangers let in), log scale; 0 is drawn at the left edge")
    ax.set_ylabel("genuine acceptance (1 - FRR)")
    ax.set_title("ROC: genuine acceptance against false accepts")
    figure.legend(loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    return figure


def _histogram_range(distances: dict[str, np.ndarray], thresholds: list[float]) -> tuple[float, float]:
    """All distances and thresholds, widened to multiples of 0.1."""
    everything = np.concatenate([np.asarray(d, np.float64) for d in distances.values()] + [thresholds])
    low = float(np.floor(everything.min() * 10) / 10)
    high = float(np.ceil(everything.max() * 10) / 10)
    return low, max(high, low + 0.1)


def _used_bins(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fractions, edges)`` of ``values`` per bin, without the empty bins at either end.

    Trimmed, an outline does not run along the x axis where a distribution has no values. With no values
    at all, one empty bin is left so there is still something to draw.
    """
    counts, _ = np.histogram(values, bins=edges)
    used = np.flatnonzero(counts)
    first, last = (used[0], used[-1]) if len(used) else (0, 0)
    return counts[first:last + 1] / max(len(values), 1), edges[first:last + 2]


def distances_figure(distances: dict[str, np.ndarray], report: dict, *, course_threshold: float = COURSE_THRESHOLD,
                     bins: int = 40, size: tuple[int, int] = DISTANCES_SIZE) -> Figure:
    """Histograms of the distances: genuine against impostor pairs above, the open set below.

    Each distribution is drawn as the fraction of its own values per bin (``np.histogram`` counts over
    ``bins`` equal bins divided by its length), so a group of 100 and one of 5,000 values compare by shape;
    its empty bins at either end are left out. Both panels share the bin edges, which span every distance
    and threshold (rounded out to 0.1). Dashed vertical lines mark the recommended threshold and
    ``course_threshold``.

    Args:
        distances, report, course_threshold: as for :func:`roc_figure`.
        bins: number of bins.
        size: ``(width, height)`` in pixels.

    Returns:
        The figure: two axes, top to bottom; in each a :class:`~matplotlib.patches.StepPatch` per
        distribution's outline (``gid`` ``"genuine"``, ``"impostor"``, ``"open_set_genuine"``,
        ``"open_set_stranger"``, the keys of ``distances``; ``get_data()`` gives the fractions and the edges
        of the bins drawn), its fill (``gid`` the key + ``"_fill"``) and the vertical lines ``"recommended"``
        and ``"course"``.
    """
    chosen = float(report["recommended"]["threshold"])
    edges = np.linspace(*_histogram_range(distances, [chosen, course_threshold]), bins + 1)
    figure = _new_figure(size)
    top, bottom = figure.subplots(2, 1, sharex=True)
    panels = (
        (top, f"photo pairs: {len(distances['genuine'])} genuine, {len(distances['impostor'])} impostor",
         (("genuine", "genuine pair", _BLUE), ("impostor", "impostor pair", _RED))),
        (bottom, f"open set: each photo's nearest other photo ({len(distances['open_set_stranger'])} photos)",
         (("open_set_genuine", "nearest same person", _GREEN),
          ("open_set_stranger", "nearest other person (stranger)", _ORANGE))),
    )
    for ax, title, groups in panels:
        for key, label, colour in groups:
            values = np.asarray(distances[key], np.float64)
            fractions, used_edges = _used_bins(values, edges)
            ax.stairs(fractions, used_edges, fill=True, facecolor=colour, alpha=0.25, edgecolor="none",
                      gid=f"{key}_fill")
            ax.stairs(fractions, used_edges, color=colour, linewidth=2, label=f"{label} ({len(values)})", gid=key)
        for gid, name, threshold, colour in (("recommended", "recommended threshold", chosen, _PURPLE),
                                             ("course", "course threshold", course_threshold, _GREY)):
            ax.axvline(threshold, color=colour, linestyle="--", linewidth=1.8, gid=gid,
                       label=f"{name} {threshold:.3f}")
        ax.set_title(title, loc="left", fontsize="medium")
        ax.set_ylabel("fraction per bin")
        ax.set_ylim(bottom=0.0)
        ax.grid(True, color="0.9")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    bottom.set_xlim(edges[0], edges[-1])
    bottom.set_xlabel("L2 distance between encodings (0..2)")
    figure.suptitle("L2 distances between encodings")
    return figure


def save_png(path: str | Path, figure: Figure) -> Path:
    """Render ``figure`` at its own size (pixels = inches x dpi) and write it as a PNG, all or nothing."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, facecolor=figure.get_facecolor())
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def calibration_plots(outdir: Path, distances: dict[str, np.ndarray], report: dict, *,
                      course_threshold: float = COURSE_THRESHOLD) -> dict[str, Path]:
    """Write ``roc.png`` (:func:`roc_figure`) and ``distances.png`` (:func:`distances_figure`) into ``outdir``.

    ``outdir`` is created if needed; each file is written atomically. Returns ``{"roc": path, "distances":
    path}``.

    Raises:
        OptionalDependencyError: matplotlib is not installed (before anything is written).
    """
    roc = roc_figure(distances, report, course_threshold=course_threshold)
    hist = distances_figure(distances, report, course_threshold=course_threshold)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return {"roc": save_png(outdir / "roc.png", roc), "distances": save_png(outdir / "distances.png", hist)}


def det_figure(distances: dict[str, np.ndarray], report: dict, *, size: tuple[int, int] = DET_SIZE) -> Figure:
    """The DET curve of the door's 1:N rule: FNIR against FPIR, both on log axes, the shipped point marked.

    Args:
        distances: 1-D arrays ``genuine`` and ``stranger`` as :func:`edge.eval.evaluation.stranger_evaluation`
            returns them (``inf``: a genuine probe never identified as itself).
        report: that function's report: ``fpir`` and ``fnir`` (``rate``, ``count``, ``total``) and
            ``threshold`` (``value``, ``source``) of the shipped rule, ``at_fpir`` (thresholds chosen on the
            strangers).
        size: ``(width, height)`` in pixels.

    Returns:
        The figure. Its lines: ``gid`` ``"det"`` holds :func:`~edge.eval.evaluation.det_curve` as
        ``x = max(fpir, x_floor)``, ``y = max(fnir, y_floor)`` (floors from :func:`far_floor` of the strangers
        and of the genuine probes: a rate of 0 is drawn at the edge); ``"shipped"`` marks the shipped rule's
        rates, ``"measured"`` the rates at the thresholds of ``at_fpir``, ``"resolution"`` is the vertical
        line at FPIR ``1 / strangers``, below which no rate can be shown.
    """
    stranger, genuine = distances["stranger"], distances["genuine"]
    x_floor, y_floor = far_floor(stranger), far_floor(genuine)
    figure = _new_figure(size)
    ax = figure.add_subplot()
    _, fpir, fnir = det_curve(genuine, stranger)
    ax.plot(np.maximum(fpir, x_floor), np.maximum(fnir, y_floor), color=_BLUE, linewidth=2, gid="det", zorder=2,
            label=f"templates against {len(stranger)} strangers and {len(genuine)} genuine photos")
    ax.axvline(1.0 / max(len(stranger), 1), color=_GREY, linestyle=":", linewidth=1.5, gid="resolution",
               label=f"1/{len(stranger)}: no lower FPIR can be shown")
    measured = report["at_fpir"]
    ax.plot([max(m["fpir"]["rate"], x_floor) for m in measured], [max(m["fnir"]["rate"], y_floor) for m in measured],
            linestyle="none", marker="x", markersize=8, markeredgewidth=2, color=_GREEN, gid="measured", zorder=3,
            clip_on=False, label="thresholds chosen on these strangers for FPIR "
            + ", ".join(f"{100 * m['target']:g}%" for m in measured))
    threshold, door_fpir, door_fnir = report["threshold"], report["fpir"], report["fnir"]
    ax.plot([max(door_fpir["rate"], x_floor)], [max(door_fnir["rate"], y_floor)], linestyle="none", marker="o",
            markersize=10, markerfacecolor="none", markeredgewidth=2.5, color=_RED, gid="shipped", zorder=4,
            clip_on=False,
            label=f"shipped: threshold {threshold['value']:.3f} ({threshold['source']}): FPIR "
                  f"{door_fpir['count']}/{door_fpir['total']}, FNIR {door_fnir['count']}/{door_fnir['total']}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_floor, 1.0)
    ax.set_ylim(y_floor, 1.0)
    ax.xaxis.set_major_formatter(_percent_formatter(x_floor))
    ax.yaxis.set_major_formatter(_percent_formatter(y_floor))
    ax.grid(True, which="major", color="0.88")
    ax.set_xlabel("FPIR: strangers let in, log scale; 0 is drawn at the left edge")
    ax.set_ylabel("FNIR: enrolled people not identified, log scale; 0 at the bottom")
    ax.set_title("DET: the door's 1:N rule (one template per person)")
    figure.legend(loc="outside lower center", ncols=1, fontsize="small", frameon=False)
    return figure


def evaluation_plots(outdir: Path, distances: dict[str, np.ndarray], report: dict) -> dict[str, Path]:
    """Write ``det.png`` (:func:`det_figure`) into ``outdir`` (created if needed, the file written atomically).

    Returns ``{"det": path}``.

    Raises:
        OptionalDependencyError: matplotlib is not installed (before anything is written).
    """
    det = det_figure(distances, report)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return {"det": save_png(outdir / "det.png", det)}
