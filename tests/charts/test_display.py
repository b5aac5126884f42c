"""Every chart kind: a valid Vega-Lite spec that renders offline, small data, notebook display."""

from __future__ import annotations

import json
import re
import struct
import zlib

import altair as alt
import pytest
import vl_convert as vlc

from heapseg import charts
from heapseg.charts.display import compact_png
from tests.charts.conftest import BUYERS, PAID, SHOPPERS

SEGMENTS = {"Paid": PAID, "Buyers": BUYERS}

KINDS = {
    "trend": lambda ds: charts.trend(ds, "Session", by=SEGMENTS, include_all=True),
    "compare": lambda ds: charts.compare(ds, SEGMENTS, event="Completed Order"),
    "sizes": lambda ds: charts.sizes(ds, {**SEGMENTS, "Shoppers": SHOPPERS}),
    "overlap": lambda ds: charts.overlap(ds, SEGMENTS),
    "funnel": lambda ds: charts.funnel(ds, ["Session", "Add to Cart"], by=SEGMENTS),
    "retention": lambda ds: charts.retention(ds, "Session", by=SEGMENTS, periods=3),
    "size_over_time": lambda ds: charts.size_over_time(ds, SEGMENTS, last=4),
    "breakdown": lambda ds: charts.breakdown(ds, ("Paid", PAID), "country"),
    "lifecycle": lambda ds: charts.lifecycle(ds, "Session", by=SEGMENTS, interval="week", last=5),
    "stickiness": lambda ds: charts.stickiness(ds, "Session", by=SEGMENTS),
    "paths": lambda ds: charts.paths(ds, "Add to Cart", by=SEGMENTS, steps=1, top=3),
}
CDN = re.compile(r"cdn\.jsdelivr|esm\.sh|unpkg\.com|<script[^>]+src=", re.IGNORECASE)


@pytest.fixture(scope="module")
def built(ds):
    return {name: make(ds) for name, make in KINDS.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_spec_is_valid_and_renders(built, kind):
    chart = built[kind]
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    assert spec["$schema"].endswith("v6.json") or "v6" in spec["$schema"]
    svg = vlc.vegalite_to_svg(spec)
    assert svg.lstrip().startswith("<svg") and "<path" in svg
    png = vlc.vegalite_to_png(spec)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    title = json.dumps(spec.get("title", {}))
    assert "as of 2026-09-15 12:00 UTC" in title


@pytest.mark.parametrize("kind", KINDS)
def test_data_is_the_small_aggregate(built, kind):
    data = built[kind].data
    assert 0 < len(data) <= 200
    values = [v for d in built[kind].to_dict()["datasets"].values() for v in [len(d)]]
    assert values == [len(data)]


def test_no_query_returns_rows_at_event_scale(ds, oracle, executed):
    for make in KINDS.values():
        make(ds)
    assert executed, "the charts ran their queries through Dataset.execute"
    # 30k+ events in the sample; no chart brings back more than a few dozen rows.
    assert max(executed) <= 60 < len(oracle.events)


def test_a_segment_keeps_its_colour_across_charts(ds):
    palette = charts.SegmentColors()
    first = charts.trend(ds, "Session", by={"Buyers": BUYERS}, colors=palette, last=3)
    second = charts.compare(ds, {"Paid": PAID, "Buyers": BUYERS}, colors=palette)

    def colour_of(chart, name):
        spec = chart.to_dict()
        scales = [
            layer["encoding"]["color"]["scale"]
            for layer in spec.get("layer", [spec])
            if "color" in layer.get("encoding", {}) and "scale" in layer["encoding"]["color"]
        ]
        scale = scales[0]
        return scale["range"][scale["domain"].index(name)]

    assert colour_of(first, "Buyers") == colour_of(second, "Buyers") == palette["Buyers"]
    assert colour_of(second, "Paid") != colour_of(second, "Buyers")
    assert colour_of(second, charts.ALL_USERS) == charts.common.NEUTRAL[charts.ALL_USERS]


def test_legend_toggles_series(built):
    spec = built["trend"].to_dict()
    params = spec["params"] if "params" in spec else spec.get("layer", [{}])[0].get("params", [])
    toggle = next(p for p in params if p["name"] == "legend_toggle")
    assert toggle["bind"] == "legend" and toggle["select"]["fields"] == ["segment"]


def test_notebook_output_loads_nothing_from_a_cdn(built, renderer):
    chart = built["trend"]
    online = chart._repr_mimebundle_()
    assert CDN.search(json.dumps(online, default=str)), "the default output does use a CDN"
    assert charts.enable_notebook() == "jupyter"
    bundle = chart._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not CDN.search(json.dumps(bundle, default=str))
    # The widget's JavaScript is vl-convert's bundle, not an import from the network.
    assert alt.JupyterChart._is_offline and not CDN.search(alt.JupyterChart._esm)


def _pixels(png: bytes) -> tuple[tuple, bytes]:
    """A PNG's header fields and its decompressed pixel rows (read here, not by heapseg)."""
    header, data, index = (), b"", 8
    while index < len(png):
        (size,) = struct.unpack(">I", png[index : index + 4])
        kind, body = png[index + 4 : index + 8], png[index + 8 : index + 8 + size]
        assert struct.unpack(">I", png[index + 8 + size : index + 12 + size])[0] == (
            zlib.crc32(kind + body) & 0xFFFFFFFF
        )
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            data += body
        index += 12 + size
    return header, zlib.decompress(data)


def test_static_notebook_mode_is_a_sharp_png_at_the_charts_size(built, renderer):
    """Static charts are PNG: their text is drawn with the fonts their layout was measured with,
    so no browser can clip it (an SVG's text is drawn with the browser's own fonts)."""
    assert charts.enable_notebook("static") == "png"
    bundle, metadata = built["overlap"]._repr_mimebundle_()
    png = bundle["image/png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and "image/svg+xml" not in bundle
    (width, height, *_), _ = _pixels(png)
    # Drawn at twice the pixels, shown at the chart's own size.
    assert metadata["image/png"] == {"width": width / 2, "height": height / 2}
    svg = vlc.vegalite_to_svg(built["overlap"].to_dict())
    assert f'width="{round(width / 2)}"' in svg
    with pytest.raises(charts.ChartError):
        charts.enable_notebook("fancy")


def test_svg_notebook_mode_is_still_there(built, renderer):
    assert charts.enable_notebook("svg") == "svg"
    bundle = built["overlap"]._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert bundle["image/svg+xml"].lstrip().startswith("<svg")


def test_compact_png_keeps_every_pixel_in_fewer_bytes(built):
    png = vlc.vegalite_to_png(built["trend"].to_dict(), ppi=144)
    small = compact_png(png)
    assert _pixels(small) == _pixels(png)
    assert len(small) < len(png) / 2
    assert _pixels(compact_png(small)) == _pixels(png)  # again: the same image


def test_save_png_svg_html(built, tmp_path):
    chart = built["funnel"]
    assert charts.save(chart, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in charts.save(chart, tmp_path / "f.svg").read_text()
    html = charts.save(chart, tmp_path / "f.html").read_text()
    assert "vegaEmbed" in html and not CDN.search(html)
    with pytest.raises(charts.ChartError, match=r"\.pdf"):
        charts.save(chart, tmp_path / "f.pdf")


def test_save_returns_the_absolute_path_written(built, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = charts.save(built["trend"], "chart.png")
    assert out == tmp_path.resolve() / "chart.png" and out.is_absolute()
    assert out.read_bytes()[:4] == b"\x89PNG"
