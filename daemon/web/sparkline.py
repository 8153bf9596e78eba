"""A small inline SVG line of a climate field over the last day, drawn on the server (no
script, no external file: the console's content policy allows only its own files)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["sparkline"]

_WIDTH, _HEIGHT, _PAD = 120, 32, 3


def sparkline(points: Sequence[tuple[int, float]], start_ns: int, end_ns: int,
              limit: float | None, label: str) -> Markup:
    """The values `points` ((at, value), oldest first) between `start_ns` and `end_ns`, with
    the warning `limit` as a dashed line; `label` is what a screen reader says."""
    values = [v for _, v in points]
    bounds = [*values, *([limit] if limit is not None else [])]
    if not values:
        return Markup('<svg class="spark" viewBox="0 0 {w} {h}" role="img" aria-label="{l}">'
                      '</svg>').format(w=_WIDTH, h=_HEIGHT, l=f"{label}: no readings")
    low, high = min(bounds), max(bounds)
    span = high - low or 1.0

    def x(at: int) -> float:
        return round((at - start_ns) / max(1, end_ns - start_ns) * _WIDTH, 1)

    def y(value: float) -> float:
        return round(_PAD + (high - value) / span * (_HEIGHT - 2 * _PAD), 1)

    line = " ".join(f"{x(at)},{y(v)}" for at, v in points)
    parts = [f'<svg class="spark" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
             f'preserveAspectRatio="none" role="img" '
             f'aria-label="{escape(label)}: {len(values)} values from {min(values):.1f} '
             f'to {max(values):.1f}">']
    if limit is not None:
        parts.append(f'<line class="limit" x1="0" x2="{_WIDTH}" y1="{y(limit)}" '
                     f'y2="{y(limit)}"/>')
    if len(points) == 1:
        at, v = points[0]
        parts.append(f'<circle cx="{x(at)}" cy="{y(v)}" r="2"/>')
    else:
        parts.append(f'<polyline points="{line}"/>')
        at, v = points[-1]
        parts.append(f'<circle cx="{x(at)}" cy="{y(v)}" r="2"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
