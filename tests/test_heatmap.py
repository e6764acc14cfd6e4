"""viewer.heatmap: the one heatmap figure (cells, replay, diff)."""

from viewer import heatmap


def _figure(**kw):
    args = {"rows": [1500, 2000], "columns": [35, 50], "z": [[1.0, None], [-3.0, 2.0]]}
    return heatmap.figure(**{**args, **kw})


def test_rows_are_rpm_ascending_downwards_and_columns_kpa_by_default():
    fig = _figure()
    trace, layout = fig["data"][0], fig["layout"]
    assert trace["y"] == ["1500", "2000"] and trace["x"] == ["35", "50"]
    assert layout["yaxis"]["autorange"] == "reversed"  # the first row at the top, as the grid CSVs read
    assert layout["yaxis"]["title"]["text"] == "RPM" and layout["xaxis"]["title"]["text"] == "kPa"
    assert trace["z"] == [[1.0, None], [-3.0, 2.0]]  # no data stays blank, not zero


def test_diverging_values_are_centred_on_zero_and_others_start_at_zero():
    diverging = _figure(diverging=True)["data"][0]
    assert diverging["colorscale"] == heatmap.DIVERGING
    assert (diverging["zmin"], diverging["zmid"], diverging["zmax"]) == (-3.0, 0, 3.0)
    sequential = _figure(z=[[1.0, None], [4.0, 2.0]])["data"][0]
    assert sequential["colorscale"] == heatmap.SEQUENTIAL
    assert (sequential["zmin"], sequential["zmax"]) == (0, 4.0)


def test_every_text_is_escaped_and_bidi_controls_shown_as_code_points():
    fig = _figure(
        rows=["<b>r</b>", "r\u202e2"],
        columns=["<img src=x>", "c"],
        hover=[[["head <i>", "line <script>"], None], [None, ["x"]]],
        text=[["<u>", ""], ["", "t"]],
        value_title="<svg onload=x>",
        x_title="<x>",
        y_title="\u2067y",
    )
    trace, layout = fig["data"][0], fig["layout"]
    assert trace["y"] == ["&lt;b&gt;r&lt;/b&gt;", "r&lt;U+202E&gt;2"]
    assert trace["x"][0] == "&lt;img src=x&gt;" and trace["text"][0][0] == "&lt;u&gt;"
    assert trace["customdata"][0][0] == "<b>head &lt;i&gt;</b><br>line &lt;script&gt;"
    assert trace["customdata"][0][1] is None
    assert trace["colorbar"]["title"]["text"] == "&lt;svg onload=x&gt;"
    assert layout["xaxis"]["title"]["text"] == "&lt;x&gt;"
    assert layout["yaxis"]["title"]["text"] == "&lt;U+2067&gt;y"


def test_a_selected_cell_is_framed():
    (shape,) = _figure(selected=(1, 0))["layout"]["shapes"]
    assert (shape["x0"], shape["x1"], shape["y0"], shape["y1"]) == (-0.5, 0.5, 0.5, 1.5)
    assert "shapes" not in _figure()["layout"]


def test_long_labels_are_shortened_on_the_axis_only():
    long = "agent_" + "x" * 60
    fig = _figure(columns=[long, "b"])
    axis = fig["layout"]["xaxis"]
    assert fig["data"][0]["x"][0] == long and axis["tickvals"][0] == long
    assert axis["ticktext"][0].endswith("…") and len(axis["ticktext"][0]) == heatmap.TICK_CHARS



def test_a_blank_cell_keeps_its_text_for_plotly_to_write():
    trace = _figure(text=[["+1", "A only"], ["-3", "+2"]])["data"][0]
    assert trace["z"][0][1] is None and trace["text"][0][1] == "A only"
