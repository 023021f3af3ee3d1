"""Small charts drawn on the server as SVG: earnings over time, reads per dataset, the
audit timeline, job states.

No script and no style attribute (the pages' Content-Security-Policy allows neither
inline): colours and sizes are SVG presentation attributes, text is escaped, and the
result is ``Markup`` a template can place as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from markupsafe import Markup

WIDTH: Final = 640
HEIGHT: Final = 200
PAD: Final = 36  # room for the axis labels
BAR_COLOUR: Final = "#1f6feb"
LINE_COLOUR: Final = "#067647"
AXIS_COLOUR: Final = "#5b6672"


def _svg(title: str, body: list[str], height: int = HEIGHT) -> Markup:
    label = escape(title, quote=True)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{label}">'
        f"<title>{label}</title>{''.join(body)}</svg>"
    )


def _empty(title: str, height: int = HEIGHT) -> Markup:
    return _svg(
        title,
        [
            f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" '
            f'fill="{AXIS_COLOUR}">nothing yet</text>'
        ],
        height,
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}"


def bar_chart(title: str, bars: Sequence[tuple[str, float]]) -> Markup:
    """One horizontal bar per (label, value), longest first as given; values >= 0."""
    if not bars:
        return _empty(title)
    row = 22
    height = PAD + row * len(bars)
    top = max(max(v for _, v in bars), 1e-12)
    label_w = 200
    span = WIDTH - label_w - 80
    body = []
    for i, (label, value) in enumerate(bars):
        y = PAD / 2 + i * row
        w = max(0.0, value) / top * span
        body.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12" '
            f'fill="{AXIS_COLOUR}">{escape(label[:32])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{BAR_COLOUR}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="12">{_number(value)}</text>'
        )
    return _svg(title, body, int(height))


def line_chart(title: str, points: Sequence[tuple[float, float]], y_label: str = "") -> Markup:
    """A step line through (x, y) points sorted by x (x in seconds since the epoch, say:
    the axis shows the first and last x as dates); y >= 0."""
    if not points:
        return _empty(title)
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y1 = max(max(ys), 1e-12)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def at(x: float, y: float) -> str:
        px = PAD + (0.5 if x1 == x0 else (x - x0) / (x1 - x0)) * inner_w
        py = HEIGHT - PAD - max(0.0, y) / y1 * inner_h
        return f"{px:.1f},{py:.1f}"

    path: list[str] = []
    previous_y: float | None = None
    for x, y in points:
        if previous_y is not None:
            path.append(at(x, previous_y))
        path.append(at(x, y))
        previous_y = y
    body = [
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        f'stroke="{AXIS_COLOUR}"/>',
        f'<polyline points="{" ".join(path)}" fill="none" stroke="{LINE_COLOUR}" '
        'stroke-width="2"/>',
        f'<text x="{PAD}" y="{PAD - 10}" font-size="12" fill="{AXIS_COLOUR}">'
        f"{escape(y_label)} max {_number(y1)}</text>",
        f'<text x="{PAD}" y="{HEIGHT - 10}" font-size="12" fill="{AXIS_COLOUR}">{_date(x0)}</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" text-anchor="end" font-size="12" '
        f'fill="{AXIS_COLOUR}">{_date(x1)}</text>',
    ]
    return _svg(title, body)


def _date(epoch_s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M")
