"""A sparkline drawn on the server as inline SVG: no chart library, no script, numbers only."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup


def sparkline(
    done: Sequence[int], failed: Sequence[int], *, width: int = 160, height: int = 28, label: str = ""
) -> Markup:
    """Two polylines over the same buckets (oldest first): finished jobs and failures.

    Every value written into the SVG is a number computed here, so there is nothing to escape
    but the label, which goes through Markup's escaping.
    """
    buckets = max(len(done), len(failed), 2)
    top = max([1, *done, *failed])

    def points(values: Sequence[int]) -> str:
        step = (width - 2) / (buckets - 1)
        return " ".join(f"{1 + i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values))

    return Markup(
        '<svg class="spark" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
        "<title>{label}</title>"
        '<polyline class="spark-done" fill="none" points="{done}"/>'
        '<polyline class="spark-failed" fill="none" points="{failed}"/>'
        "</svg>"
    ).format(w=width, h=height, label=label, done=points(done), failed=points(failed))
