"""The dashboard's charts as inline SVG: pure functions from integers to markup.

Each chart is an ``<svg role="img">`` named by a ``<title>`` (its alt text, written by the
caller with the figures it shows) and scales with its container through its ``viewBox``.
Every colour has at least 3:1 contrast against the white background (WCAG 1.4.11), and each
page also gives the figures as a table. Only geometry uses floats here; no amount is rounded
for anything but drawing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 28

#: Colours of the series (contrast against white: 5.2, 5.7, 5.0, 6.3 and 7.9 to 1).
GREEN, GREY, AMBER, BLUE = "#1b7a3a", "#5a6570", "#a85400", "#1f5ba0"
#: The colour of a limit line (contrast 7.6 to 1).
RED = "#a4000f"
PURPLE = "#6a3d9a"


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    colour: str
    values: Sequence[int]


def _open(chart_id: str, alt: str) -> list[str]:
    return [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-labelledby="{chart_id}-title" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-title">{escape(alt)}</title>',
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>',
    ]


def _axis_label(x: float, y: float, label: str, anchor: str = "end") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" fill="#222" '
        f'text-anchor="{anchor}">{escape(label)}</text>'
    )


def _hover(x: float, width: float, tip: str) -> str:
    """A transparent column over one label's place whose ``<title>`` is the values there: a
    pointer anywhere in the column shows them (assistive technology reads the chart's own
    title and the page's table, as the chart is one image to it)."""
    return (
        f'<rect class="hover" x="{x:.1f}" y="{TOP}" width="{width:.1f}" '
        f'height="{H - TOP - BOTTOM}" fill="#000" fill-opacity="0">'
        f"<title>{escape(tip)}</title></rect>"
    )


def _hovers(tips: Sequence[str] | None, step: float) -> list[str]:
    return [_hover(LEFT + step * i, step, tip) for i, tip in enumerate(tips or ())]


def _x_labels(labels: Sequence[str], step: float) -> list[str]:
    out = []
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + step * (i + 0.5)
            out.append(_axis_label(x, H - 8, label, "middle"))
    return out


def mirrored_bars(
    chart_id: str, alt: str, labels: Sequence[str], up: Sequence[Series], down: Sequence[Series]
) -> Markup:
    """Stacked bars per label: ``up`` series above the zero line, ``down`` below."""
    n = max(len(labels), 1)
    tops = [sum(s.values[i] for s in up) for i in range(len(labels))]
    bottoms = [sum(s.values[i] for s in down) for i in range(len(labels))]
    scale_max = max([1, *tops, *bottoms])
    plot_h = H - TOP - BOTTOM
    zero = TOP + plot_h / 2
    per_wh = (plot_h / 2) / scale_max
    step = (W - LEFT - RIGHT) / n
    bar = max(step * 0.7, 1.0)
    parts = _open(chart_id, alt)
    parts.append(
        f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#222"/>'
    )
    parts.append(_axis_label(LEFT - 4, TOP + 10, f"{scale_max} Wh"))
    parts.append(_axis_label(LEFT - 4, zero + 4, "0"))
    parts.append(_axis_label(LEFT - 4, H - BOTTOM, f"-{scale_max} Wh"))
    for i in range(len(labels)):
        x = LEFT + step * i + (step - bar) / 2
        y = zero
        for s in up:
            h = s.values[i] * per_wh
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{s.colour}"/>'
                )
        y = zero
        for s in down:
            h = s.values[i] * per_wh
            if h > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{s.colour}"/>'
                )
                y += h
    parts += _x_labels(labels, step)
    parts.append("</svg>")
    return Markup("".join(parts))


def grouped_bars(
    chart_id: str,
    alt: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    tips: Sequence[str] | None = None,
    value_text: Callable[[int], str] | None = None,
) -> Markup:
    """Side-by-side bars per label, one per series, from a zero baseline.

    ``tips``: per label, the text a pointer shows over its bars (the values there);
    ``value_text`` writes the scale's top value with its unit (default ``<n> Wh``)."""
    n = max(len(labels), 1)
    scale_max = max([1, *(v for s in series for v in s.values)])
    plot_h = H - TOP - BOTTOM
    base = TOP + plot_h
    step = (W - LEFT - RIGHT) / n
    width = max(step * 0.8 / max(len(series), 1), 1.0)
    parts = _open(chart_id, alt)
    parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{base}" y2="{base}" stroke="#222"/>')
    top = value_text(scale_max) if value_text is not None else f"{scale_max} Wh"
    parts.append(_axis_label(LEFT - 4, TOP + 10, top))
    parts.append(_axis_label(LEFT - 4, base, "0"))
    for i in range(len(labels)):
        for k, s in enumerate(series):
            h = s.values[i] * plot_h / scale_max
            x = LEFT + step * i + step * 0.1 + width * k
            parts.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{s.colour}"/>'
            )
    parts += _x_labels(labels, step)
    parts += _hovers(tips, step)
    parts.append("</svg>")
    return Markup("".join(parts))


def points_in_band(
    chart_id: str,
    alt: str,
    labels: Sequence[str],
    low: Sequence[int | None],
    high: Sequence[int | None],
    band: tuple[int, int],
    unit: str,
    scale: int = 1,
    *,
    tips: Sequence[str] | None = None,
    axis_text: Callable[[int], str] | None = None,
) -> Markup:
    """Per label a marker from ``low`` to ``high`` (a dot when equal) over a shaded band.

    Values and the band are integers in ``unit``/``scale`` (e.g. µ€/kWh with scale 10,000 to
    read c€/kWh; per-mille pu with scale 1,000). ``tips``: per label, the text a pointer
    shows over it; ``axis_text`` writes a band edge with its unit in the reader's language
    (default ``<value/scale> <unit>``)."""
    n = max(len(labels), 1)
    seen = [v for v in [*low, *high] if v is not None]
    lo = min([band[0], *seen])
    hi = max([band[1], *seen])
    pad = max((hi - lo) // 10, 1)
    lo, hi = lo - pad, hi + pad
    plot_h = H - TOP - BOTTOM
    step = (W - LEFT - RIGHT) / n

    def y(v: int) -> float:
        return TOP + plot_h * (hi - v) / (hi - lo)

    parts = _open(chart_id, alt)
    parts.append(
        f'<rect x="{LEFT}" y="{y(band[1]):.1f}" width="{W - LEFT - RIGHT}" '
        f'height="{y(band[0]) - y(band[1]):.1f}" fill="#d9ecdf" stroke="{GREEN}"/>'
    )
    for v in band:
        edge = axis_text(v) if axis_text is not None else f"{v / scale:g} {unit}"
        parts.append(_axis_label(LEFT - 4, y(v) + 4, edge))
    for i in range(len(labels)):
        a, b = low[i], high[i]
        if a is None or b is None:
            continue
        x = LEFT + step * (i + 0.5)
        outside = a < band[0] or b > band[1]
        colour = AMBER if outside else BLUE
        if a != b:
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(a):.1f}" y2="{y(b):.1f}" '
                f'stroke="{colour}" stroke-width="3"/>'
            )
        parts.append(f'<circle cx="{x:.1f}" cy="{y(b):.1f}" r="3.5" fill="{colour}"/>')
        if a != b:
            parts.append(f'<circle cx="{x:.1f}" cy="{y(a):.1f}" r="3.5" fill="{colour}"/>')
    parts += _x_labels(labels, step)
    parts += _hovers(tips, step)
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class Line:
    """One line of :func:`lines_under_limit`: values per label (``None``: no value there),
    drawn solid or dashed so that two lines differ by more than their colour."""

    label: str
    colour: str
    values: Sequence[int | None]
    dashed: bool = False


def lines_under_limit(
    chart_id: str,
    alt: str,
    labels: Sequence[str],
    lines: Sequence[Line],
    limit: int,
    axis_text: Callable[[int], str],
    *,
    tips: Sequence[str] | None = None,
) -> Markup:
    """Lines per label from a zero baseline, under a dashed red limit (e.g. loading in tenths
    of a percent against 1,000 for 100 %), each point marked. ``axis_text`` writes a value of
    the scale with its unit; ``tips``: per label, the text a pointer shows over it."""
    n = max(len(labels), 1)
    seen = [v for line in lines for v in line.values if v is not None]
    top = max([limit, *seen]) * 11 // 10 or 1
    plot_h = H - TOP - BOTTOM
    base = TOP + plot_h
    step = (W - LEFT - RIGHT) / n

    def y(v: int) -> float:
        return base - plot_h * v / top

    parts = _open(chart_id, alt)
    parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{base}" y2="{base}" stroke="#222"/>')
    parts.append(
        f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
        f'stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 4"/>'
    )
    parts.append(_axis_label(LEFT - 4, y(limit) + 4, axis_text(limit)))
    parts.append(_axis_label(LEFT - 4, base, axis_text(0)))
    for line in lines:
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        run: list[str] = []
        points: list[str] = []
        for i, v in enumerate([*line.values, None]):
            if v is not None:
                x = LEFT + step * (i + 0.5)
                run.append(f"{x:.1f},{y(v):.1f}")
                points.append(
                    f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="2.5" fill="{line.colour}"/>'
                )
                continue
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{line.colour}" '
                    f'stroke-width="2"{dash}/>'
                )
            run = []
        parts += points
    parts += _x_labels(labels, step)
    parts += _hovers(tips, step)
    parts.append("</svg>")
    return Markup("".join(parts))
