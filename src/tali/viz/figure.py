"""Headless matplotlib figures: ``Figure`` on an Agg canvas, never pyplot's global state."""

from __future__ import annotations

from typing import Any, Literal

from tali.errors import TaliConfigError

__all__ = ["new_figure", "png_bytes"]


def new_figure(
    width: float,
    height: float,
    *,
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained",
) -> Any:
    """A ``Figure`` (inches) that renders without a display or a GUI backend; works in workers.

    ``layout=None`` skips matplotlib's constrained layout (it about doubles the render
    time of a grid of small plots); lay the axes out with ``subplots_adjust`` then."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise TaliConfigError("plots need matplotlib: pip install 'tali-dataset[viz]'") from None
    figure = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Any, *, dpi: int = 100) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
