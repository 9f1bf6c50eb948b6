"""PNG charts drawn with OpenCV alone (the device has no matplotlib): line charts and histograms.

Every chart is returned as a new ``(H, W, 3)`` uint8 **RGB** image; :func:`save_png` converts it to
OpenCV's BGR and writes it atomically. Colours are ``(R, G, B)`` tuples of 0..255. Pixel coordinates are
``(x, y)`` with x to the right and y down, as OpenCV draws; data coordinates have y up.

Legends are drawn in a band under the title, outside the plotting area, so they never hide data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import FacegateError
from edge.files import write_bytes_atomic

Colour = tuple[int, int, int]

BLUE: Colour = (31, 119, 180)
ORANGE: Colour = (255, 127, 14)
GREEN: Colour = (44, 160, 44)
RED: Colour = (214, 39, 40)
PURPLE: Colour = (148, 103, 189)
GREY: Colour = (120, 120, 120)
BLACK: Colour = (0, 0, 0)
WHITE: Colour = (255, 255, 255)
_GRID: Colour = (228, 228, 228)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SMALL = 0.42
_LARGE = 0.6
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_BOTTOM = 78, 24, 58
_LEGEND_ROW = 20


@dataclass(frozen=True)
class Series:
    """A line through the points ``(x[i], y[i])`` (1-D arrays of equal length, in data units)."""

    label: str
    x: np.ndarray
    y: np.ndarray
    colour: Colour


@dataclass(frozen=True)
class Marker:
    """A labelled dot at ``(x, y)`` in data units."""

    label: str
    x: float
    y: float
    colour: Colour


@dataclass(frozen=True)
class VLine:
    """A dashed vertical line at ``x`` (data units), labelled at its top."""

    label: str
    x: float
    colour: Colour


@dataclass(frozen=True)
class Distribution:
    """Values to histogram (1-D, data units); drawn as a filled step outline."""

    label: str
    values: np.ndarray
    colour: Colour


def nice_ticks(lo: float, hi: float, *, count: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering ``lo..hi``, about ``count`` of them."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _rounded_up(value: float) -> float:
    """``value`` rounded up to a multiple of the tick step :func:`nice_ticks` would use up to it (1 if <= 0)."""
    if value <= 0:
        return 1.0
    ticks = nice_ticks(0.0, value, count=5)
    step = ticks[1] - ticks[0]
    return math.ceil(value / step - 1e-9) * step


def log_ticks(lo: float, hi: float) -> list[float]:
    """The powers of ten within ``lo..hi`` (both > 0)."""
    return [10.0**e for e in range(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9) + 1)]


def _tick_label(step: float) -> Callable[[float], str]:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 2
    return lambda v: f"{v:.{decimals}f}"


class Axes:
    """A rectangle of an image with data ranges: maps data ``(x, y)`` to pixels and draws in it.

    Args:
        image: the ``(H, W, 3)`` uint8 RGB canvas, drawn on in place.
        rect: ``(left, top, right, bottom)`` of the plotting area in pixels.
        x_range, y_range: ``(low, high)`` data values at the area's left/right and bottom/top edges.
        log_x: logarithmic x axis (``x_range`` must then be positive).
    """

    def __init__(self, image: np.ndarray, rect: tuple[int, int, int, int], x_range: tuple[float, float],
                 y_range: tuple[float, float], *, log_x: bool = False):
        if log_x and min(x_range) <= 0:
            raise ValueError(f"a logarithmic x axis needs a positive range, got {x_range}")
        if not (x_range[1] > x_range[0] and y_range[1] > y_range[0]):
            raise ValueError(f"empty data range: x {x_range}, y {y_range}")
        self.image = image
        self.rect = rect
        self.x_range = x_range
        self.y_range = y_range
        self.log_x = log_x

    def _tx(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(x, np.float64), *self.x_range)
        return np.log10(x) if self.log_x else x

    def px(self, x, y) -> np.ndarray:
        """Pixel positions ``(n, 2)`` int32 of data points (values outside the ranges land on the edges)."""
        left, top, right, bottom = self.rect
        lo, hi = self._tx(np.array(self.x_range))
        fx = (self._tx(np.atleast_1d(x)) - lo) / (hi - lo)
        y = np.clip(np.atleast_1d(np.asarray(y, np.float64)), *self.y_range)
        fy = (y - self.y_range[0]) / (self.y_range[1] - self.y_range[0])
        return np.stack([left + fx * (right - left), bottom - fy * (bottom - top)], axis=1).round().astype(np.int32)

    def frame(self, *, title: str, x_label: str, y_label: str,
              x_format: Callable[[float], str] | None = None) -> None:
        """Grid, ticks with their values, the border, the axis labels and the title."""
        left, top, right, bottom = self.rect
        if self.log_x:
            x_ticks = log_ticks(*self.x_range)
            x_fmt = x_format or (lambda v: f"{v:g}")
        else:
            x_ticks = nice_ticks(*self.x_range, count=9)
            x_fmt = x_format or _tick_label(x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0)
        y_ticks = nice_ticks(*self.y_range, count=6)
        y_fmt = _tick_label(y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0)
        for x in x_ticks:
            (px, _), = self.px(x, self.y_range[0])
            cv2.line(self.image, (int(px), top), (int(px), bottom), _GRID, 1)
            cv2.line(self.image, (int(px), bottom), (int(px), bottom + 5), BLACK, 1)
            text(self.image, x_fmt(x), (int(px), bottom + 20), align="centre")
        for y in y_ticks:
            (_, py), = self.px(self.x_range[0], y)
            cv2.line(self.image, (left, int(py)), (right, int(py)), _GRID, 1)
            cv2.line(self.image, (left - 5, int(py)), (left, int(py)), BLACK, 1)
            text(self.image, y_fmt(y), (left - 8, int(py) + 5), align="right")
        cv2.rectangle(self.image, (left, top), (right, bottom), BLACK, 1)
        text(self.image, x_label, ((left + right) // 2, bottom + 44), align="centre")
        _vertical_text(self.image, y_label, (16, (top + bottom) // 2))
        if title:
            text(self.image, title, ((left + right) // 2, 26), scale=_LARGE, align="centre")

    def line(self, series: Series, *, thickness: int = 2) -> None:
        points = self.px(series.x, series.y)
        cv2.polylines(self.image, [points.reshape(-1, 1, 2)], False, series.colour, thickness, cv2.LINE_AA)

    def marker(self, marker: Marker) -> None:
        (x, y), = self.px(marker.x, marker.y)
        cv2.circle(self.image, (int(x), int(y)), 6, marker.colour, 2, cv2.LINE_AA)
        below = y - 7 < self.rect[1] + 14  # no room above, inside the frame
        text(self.image, marker.label, (int(x) + 9, int(y) + (20 if below else -7)), colour=marker.colour)

    def vline(self, line: VLine, *, label_row: int = 0) -> None:
        """A dashed vertical line; ``label_row`` staggers labels of neighbouring lines."""
        (x, _), = self.px(line.x, self.y_range[0])
        top, bottom = self.rect[1], self.rect[3]
        for y in range(top, bottom, 12):
            cv2.line(self.image, (int(x), y), (int(x), min(y + 7, bottom)), line.colour, 2)
        text(self.image, line.label, (int(x) + 4, top + 14 + 16 * label_row), colour=line.colour)

    def steps(self, edges: np.ndarray, heights: np.ndarray, colour: Colour) -> None:
        """A histogram: bars ``edges[i]..edges[i+1]`` of ``heights[i]``, filled lightly, outlined.

        Empty bins at either end are left out, so the outline does not run along the x axis there.
        """
        used = np.flatnonzero(np.asarray(heights) > 0)
        if len(used) == 0:
            return
        edges, heights = edges[used[0]:used[-1] + 2], heights[used[0]:used[-1] + 1]
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(heights, 2)
        outline = self.px(np.concatenate([[edges[0]], xs, [edges[-1]]]),
                          np.concatenate([[self.y_range[0]], ys, [self.y_range[0]]]))
        fill = self.image.copy()
        cv2.fillPoly(fill, [outline.reshape(-1, 1, 2)], colour)
        cv2.addWeighted(fill, 0.18, self.image, 0.82, 0, dst=self.image)
        cv2.polylines(self.image, [outline.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)


def text(image: np.ndarray, label: str, at: tuple[int, int], *, colour: Colour = BLACK, scale: float = _SMALL,
         align: str = "left") -> None:
    """Write ``label`` with its baseline at ``at`` (pixels); ``align``: left, centre or right of ``at``."""
    (width, _), _ = cv2.getTextSize(label, _FONT, scale, 1)
    x = at[0] - {"left": 0, "centre": width // 2, "right": width}[align]
    cv2.putText(image, label, (int(x), int(at[1])), _FONT, scale, colour, 1, cv2.LINE_AA)


def _vertical_text(image: np.ndarray, label: str, centre: tuple[int, int]) -> None:
    """``label`` written bottom to top, centred on ``centre``."""
    (width, height), baseline = cv2.getTextSize(label, _FONT, _SMALL, 1)
    strip = np.full((height + baseline + 4, width + 4, 3), 255, np.uint8)
    cv2.putText(strip, label, (2, height + 2), _FONT, _SMALL, BLACK, 1, cv2.LINE_AA)
    strip = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    h, w = strip.shape[:2]
    top = max(0, min(centre[1] - h // 2, image.shape[0] - h))
    left = max(0, min(centre[0] - w // 2, image.shape[1] - w))
    image[top:top + h, left:left + w] = np.minimum(image[top:top + h, left:left + w], strip)


def _legend(image: np.ndarray, entries: Sequence[tuple[str, Colour]], *, top: int, left: int, right: int) -> int:
    """Colour swatches and labels in rows from ``top``; returns the y just below the last row."""
    x, y = left, top + _LEGEND_ROW
    for label, colour in entries:
        (width, _), _ = cv2.getTextSize(label, _FONT, _SMALL, 1)
        if x > left and x + 28 + width > right:
            x, y = left, y + _LEGEND_ROW
        cv2.line(image, (x, y - 5), (x + 20, y - 5), colour, 3)
        text(image, label, (x + 26, y))
        x += 26 + width + 22
    return y + 10


def _canvas(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if width < 200 or height < 150:
        raise ValueError(f"a chart needs at least 200x150 pixels, got {width}x{height}")
    return np.full((height, width, 3), 255, np.uint8)


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str, x_range: tuple[float, float],
               y_range: tuple[float, float], log_x: bool = False, markers: Sequence[Marker] = (),
               vlines: Sequence[VLine] = (), x_format: Callable[[float], str] | None = None,
               size: tuple[int, int] = (900, 620)) -> np.ndarray:
    """Lines (and labelled dots, dashed vertical lines) on one pair of axes.

    Args:
        size: ``(width, height)`` of the image in pixels.

    Returns:
        ``(height, width, 3)`` uint8 RGB.
    """
    image = _canvas(size)
    width, height = size
    entries = [(s.label, s.colour) for s in series]
    top = _legend(image, entries, top=34, left=_MARGIN_LEFT, right=width - _MARGIN_RIGHT) + 6
    axes = Axes(image, (_MARGIN_LEFT, top, width - _MARGIN_RIGHT, height - _MARGIN_BOTTOM), x_range, y_range,
                log_x=log_x)
    axes.frame(title=title, x_label=x_label, y_label=y_label, x_format=x_format)
    for row, line in enumerate(vlines):
        axes.vline(line, label_row=row)
    for s in series:
        axes.line(s)
    for m in markers:
        axes.marker(m)
    return image


def histogram_chart(panels: Sequence[tuple[str, Sequence[Distribution]]], *, title: str, x_label: str,
                    x_range: tuple[float, float], bins: int = 40, vlines: Sequence[VLine] = (),
                    size: tuple[int, int] = (900, 760)) -> np.ndarray:
    """Histograms of several distributions per panel, panels stacked on one shared x axis.

    Each distribution is normalised to the fraction of its own values per bin, so a group of 100 and one of
    5,000 values compare by shape. Values outside ``x_range`` are counted in the first or last bin.

    Args:
        panels: ``(panel title, distributions)`` from top to bottom.
        bins: equal-width bins over ``x_range``.
        vlines: drawn in every panel.
        size: ``(width, height)`` of the whole image in pixels.

    Returns:
        ``(height, width, 3)`` uint8 RGB.
    """
    if not panels:
        raise ValueError("a histogram chart needs at least one panel")
    image = _canvas(size)
    width, height = size
    edges = np.linspace(x_range[0], x_range[1], bins + 1)
    text(image, title, (width // 2, 26), scale=_LARGE, align="centre")
    entries = list(dict.fromkeys((d.label, d.colour) for _, dists in panels for d in dists))
    top = _legend(image, entries, top=34, left=_MARGIN_LEFT, right=width - _MARGIN_RIGHT) + 6
    panel_height = (height - top) // len(panels)
    for k, (panel_title, dists) in enumerate(panels):
        fractions = []
        for d in dists:
            values = np.clip(np.asarray(d.values, np.float64), x_range[0], x_range[1])
            counts, _ = np.histogram(values, bins=edges)
            fractions.append(counts / max(len(values), 1))
        peak = max((float(f.max()) for f in fractions), default=0.0)
        rect = (_MARGIN_LEFT, top + k * panel_height + 8, width - _MARGIN_RIGHT,
                top + (k + 1) * panel_height - _MARGIN_BOTTOM + 8)
        axes = Axes(image, rect, x_range, (0.0, _rounded_up(peak * 1.1)))
        axes.frame(title="", x_label=x_label if k == len(panels) - 1 else "", y_label="fraction per bin")
        text(image, panel_title, (rect[0] + 6, rect[1] - 5))
        for f, d in zip(fractions, dists, strict=True):
            axes.steps(edges, f, d.colour)
        for row, line in enumerate(vlines):
            axes.vline(line, label_row=row)
    return image


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB ``(H, W, 3)`` uint8 image as a PNG file, all or nothing; returns the path."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise FacegateError(f"could not encode {path} as PNG")
    write_bytes_atomic(path, data.tobytes())
    return Path(path)
