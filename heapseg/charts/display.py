"""Showing charts: offline rendering in JupyterLab (interactive, or images drawn in the kernel),
and PNG/SVG export with vl-convert."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import altair as alt

from heapseg.charts.common import ChartError

__all__ = [
    "FONT_ENV",
    "STATIC_PPI",
    "chart_font",
    "compact_png",
    "enable_notebook",
    "save",
    "to_png",
    "to_svg",
]

MODES = ("interactive", "static", "svg")
#: Pixels per inch of static notebook images: twice the 72 of a CSS pixel, so that they stay sharp
#: on high-density screens while shown at the chart's own size.
STATIC_PPI = 144
#: The environment variable that names the font family of charts drawn in the kernel (static
#: notebook charts and PNG/SVG exports), e.g. a house font; unset, Vega's default (sans-serif).
FONT_ENV = "HEAPSEG_CHART_FONT"


def chart_font() -> str | None:
    """The font family set in ``$HEAPSEG_CHART_FONT`` for charts drawn in the kernel, if any."""
    return os.environ.get(FONT_ENV, "").strip() or None


def _with_font(spec: dict) -> dict:
    """A Vega-Lite spec with :func:`chart_font` as its default font (the spec itself, unset)."""
    font = chart_font()
    if font is None:
        return spec
    return {**spec, "config": {**spec.get("config", {}), "font": font}}


def _static_svg(spec: dict, **metadata: Any) -> dict[str, str]:
    """Altair's ``svg`` renderer (vl-convert, in the kernel) with :func:`chart_font` applied."""
    from altair.vegalite.v6.display import svg_renderer

    return svg_renderer(_with_font(spec), **metadata)


def _static_png(spec: dict, **metadata: Any) -> Any:
    """Altair's ``png`` renderer (vl-convert, in the kernel) at :data:`STATIC_PPI`, shown at
    the chart's size, with :func:`chart_font` applied."""
    from altair.vegalite.v6.display import png_renderer

    bundle, sizes = png_renderer(_with_font(spec), **{"ppi": STATIC_PPI, **metadata})
    return {"image/png": compact_png(bundle["image/png"])}, sizes


def compact_png(png: bytes, level: int = 6) -> bytes:
    """The same PNG image with its pixel data compressed again, at zlib ``level``.

    vl-convert writes its PNGs fast rather than small: compressed again, a chart takes a third
    to a quarter of the bytes (a notebook of a dozen charts stays well under a megabyte).
    """
    chunks, data, index = [], b"", 8
    while index < len(png):
        (size,) = struct.unpack(">I", png[index : index + 4])
        kind = png[index + 4 : index + 8]
        if kind == b"IDAT":
            data += png[index + 8 : index + 8 + size]
            if chunks and chunks[-1][0] == b"IDAT":
                chunks.pop()
            chunks.append((b"IDAT", b""))
        else:
            chunks.append((kind, png[index + 8 : index + 8 + size]))
        index += 12 + size
    packed = zlib.compress(zlib.decompress(data), level)
    out = [png[:8]]
    for kind, body in chunks:
        body = packed if kind == b"IDAT" else body
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc))
    return b"".join(out)


def enable_notebook(mode: str = "interactive") -> str:
    """Make every Altair chart display in JupyterLab without internet access; run it first.

    Altair 6's default output loads Vega from a CDN, which fails behind a firewall. The
    ``"interactive"`` mode shows each chart as Altair's ``JupyterChart`` widget with the
    JavaScript bundled by vl-convert (tooltips, legend toggles and selections work; needs the
    ``anywidget`` package). The ``"static"`` mode shows each chart as a PNG image drawn in the
    kernel by vl-convert (at twice the pixels, shown at the chart's size): no JavaScript, no
    interactivity, and it looks the same in every browser and on GitHub, since its text is
    drawn with the very fonts its layout was measured with. The ``"svg"`` mode shows an SVG
    image instead, whose text the browser draws with its own fonts: where they are wider than
    the kernel's, labels and titles are clipped. Static charts use the font family named in
    ``$HEAPSEG_CHART_FONT`` when it is set.

    A rendered chart's pixels depend on the fonts of the machine that drew it (text widths move
    axes by a pixel), so notebooks that are tested should check the numbers behind a chart
    (``chart.data``), not its image (nbval does not compare PNG outputs).

    Parameters
    ----------
    mode
        ``"interactive"``, ``"static"`` or ``"svg"``.

    Returns
    -------
    str
        The Altair renderer now enabled (``"jupyter"``, ``"png"`` or ``"svg"``).

    Examples
    --------
    >>> import heapseg.charts
    >>> heapseg.charts.enable_notebook()
    'jupyter'
    >>> heapseg.charts.enable_notebook("static")  # PNG drawn in the kernel, no JavaScript
    'png'
    """
    if mode not in MODES:
        raise ChartError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "static":
        # Altair's own png renderer, drawn with the house font when $HEAPSEG_CHART_FONT is set.
        alt.renderers.register("png", _static_png)
        alt.renderers.enable("png")
        return "png"
    if mode == "svg":
        alt.renderers.register("svg", _static_svg)
        alt.renderers.enable("svg")
        return "svg"
    try:
        import anywidget  # noqa: F401  # JupyterChart is an anywidget
    except ImportError as exc:
        raise ChartError(
            "interactive offline charts need the anywidget package (pip install anywidget); "
            "enable_notebook('static') works without it"
        ) from exc
    alt.renderers.enable("jupyter", offline=True)
    # The renderer switches JupyterChart to the bundled JavaScript only when a chart is shown;
    # doing it now makes alt.JupyterChart(...) built by hand offline too.
    alt.JupyterChart.enable_offline()
    return "jupyter"


def to_png(chart: Any, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes, rendered locally by vl-convert (no browser, no internet), in the
    font of ``$HEAPSEG_CHART_FONT`` when it is set."""
    import vl_convert as vlc

    return compact_png(vlc.vegalite_to_png(_with_font(chart.to_dict()), scale=scale))


def to_svg(chart: Any) -> str:
    """The chart as an SVG document, rendered locally by vl-convert (font: as :func:`to_png`)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(_with_font(chart.to_dict()))


def save(chart: Any, path: str | os.PathLike[str], scale: float = 2.0) -> Path:
    """Write the chart to ``.png``, ``.svg``, ``.html`` (offline: JavaScript inlined) or ``.json``.

    Returns the absolute path of the file written (``IPython.display.Image(filename=path)``
    shows a PNG in the notebook; ``~`` is expanded).
    """
    target = Path(path).expanduser().resolve()
    suffix = target.suffix.lower()
    if suffix == ".png":
        target.write_bytes(to_png(chart, scale))
    elif suffix == ".svg":
        target.write_text(to_svg(chart), encoding="utf-8")
    elif suffix == ".html":
        chart.save(str(target), inline=True)
    elif suffix == ".json":
        chart.save(str(target))
    else:
        raise ChartError(f"cannot save a chart as {target.name!r}: use .png, .svg, .html or .json")
    return target
