"""The server-drawn charts: valid SVG, escaped text, no inline style or script."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ailedger.web.charts import bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_scale_to_the_largest_and_escape_labels() -> None:
    svg = str(bar_chart("reads <per> dataset", [("<script>x", 4), ("b", 2)]))
    root = ET.fromstring(svg)
    widths = [float(r.get("width", "0")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == 2 * widths[1] > 0
    assert "<script>" not in svg and "&lt;script&gt;x" in svg
    assert "style=" not in svg


def test_a_line_steps_through_its_points_and_an_empty_chart_says_so() -> None:
    svg = str(line_chart("earnings", [(0, 0), (3600, 5), (7200, 10)], "AIL"))
    polyline = ET.fromstring(svg).find(f"{SVG}polyline")
    assert polyline is not None
    assert len(polyline.get("points", "").split()) == 5  # three points, two steps
    assert "max 10" in svg and "1970-01-01 00:00" in svg
    assert "nothing yet" in str(line_chart("earnings", []))
    assert "nothing yet" in str(bar_chart("reads", []))
