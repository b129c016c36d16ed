"""What every explorer shares (vizlib.chapters.widgets): drawn into its Output widget by state, never
through the Output context (whose routing put figures in JupyterLab's Log Console), a busy line and
disabled controls while recomputing, the old view kept until the new one is ready, notes in plain words,
warnings and stderr kept out of sight, open figures closed. Chapter explorers are tested in test_chNN.py;
tests/test_live_lab.py drives them in a real JupyterLab."""

from __future__ import annotations

import warnings

import ipywidgets as W
import matplotlib.pyplot as plt
import pytest

from vizlib.chapters.widgets import BUSY, Explorer, capture, explorer, show_figure


def test_first_state_and_every_change_land_in_the_output_and_nowhere_else(shell, capsys):
    from IPython.display import display

    pick = W.Dropdown(options=["a", "b"], description="pick")
    n = W.IntSlider(value=1, min=1, max=3)

    def content():
        print(f"choice {pick.value}")
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_title(pick.value)
        show_figure(fig)
        display(n.value)

    box = Explorer([[pick], [n]], content)
    assert [type(c).__name__ for c in box.children] == ["HBox", "HBox", "HTML", "Output"]
    assert box.controls == [pick, n] and box.output is box.children[-1]
    first = box.output.outputs
    assert first[0] == {"output_type": "stream", "name": "stdout", "text": "choice a\n"}
    assert "image/png" in first[1]["data"] and first[2]["data"]["text/plain"] == "1"
    pick.value = "b"
    n.value = 3
    now = box.output.outputs
    assert now[0]["text"] == "choice b\n" and now[2]["data"]["text/plain"] == "3"
    assert now[1]["data"]["image/png"] != first[1]["data"]["image/png"]
    assert capsys.readouterr() == ("", "")  # nothing printed or displayed outside the explorer
    assert box.output.msg_id == ""  # the Output context was never entered
    assert not plt.get_fignums()


def test_busy_line_and_disabled_controls_while_computing_old_view_kept():
    pick = W.Dropdown(options=["a", "b"])
    other = W.Checkbox(value=False, disabled=True)  # disabled for its own reasons: stays so
    seen = []

    def content():
        seen.append((box.status.value if seen else None, pick.disabled, other.disabled,
                     box.output.outputs if seen else None))
        print(pick.value)

    box = Explorer([[pick, other]], content, busy=lambda: f"computing {pick.value}")
    assert box.status.value == "" and not pick.disabled
    before = box.output.outputs
    pick.value = "b"
    status, disabled, other_disabled, during = seen[-1]
    assert "computing b" in status and disabled and other_disabled
    assert during == before  # the previous view stays until the new one is ready
    assert box.status.value == "" and not pick.disabled and other.disabled
    assert box.output.outputs[0]["text"] == "b\n"
    box2 = Explorer([[W.Dropdown(options=[1, 2])]], lambda: None)
    statuses = []
    box2._content = lambda: statuses.append(box2.status.value)
    box2.controls[0].value = 2
    assert BUSY.split("…")[0] in statuses[0]  # without busy(), the generic line


def test_update_adjusts_controls_once_and_its_note_is_shown():
    big = W.IntSlider(value=8, max=10)
    small = W.IntSlider(value=2, max=10)
    drawn = []

    def update(change):
        if change["owner"] is big and small.value > big.value:
            small.value = big.value  # no redraw of its own
            return f"small lowered to {big.value}"
        return None

    box = explorer([big, small], lambda: drawn.append((big.value, small.value)), update=update)
    big.value = 1
    assert drawn == [(8, 2), (1, 1)]  # one redraw for the change, with the adjusted control
    assert "small lowered to 1" in box.status.value and box.last.note == "small lowered to 1"
    small.value = 0
    assert box.status.value == "" and drawn[-1] == (1, 0)
    with box.held():
        big.value = 5
    assert drawn[-1] == (1, 0)  # held: no redraw
    box.note("plain words")
    assert "plain words" in box.status.value


def test_warnings_stderr_and_errors_never_shown_as_such():
    import sys

    pick = W.Dropdown(options=["fine", "warn", "fail"])

    def content():
        if pick.value == "warn":
            warnings.warn("something odd", UserWarning)
            sys.stderr.write("100%|##########| 3/3\n")
            plt.figure()  # left open
            print("drawn anyway")
        if pick.value == "fail":
            raise ValueError("size 99 is larger than the image")

    box = Explorer([[pick]], content)
    pick.value = "warn"
    assert box.output.outputs == ({"output_type": "stream", "name": "stdout", "text": "drawn anyway\n"},)
    assert box.last.warnings == ["UserWarning: something odd"] and "3/3" in box.last.stderr
    assert not plt.get_fignums()  # the open figure was closed, it cannot surface elsewhere
    pick.value = "fail"
    assert box.output.outputs[0]["text"] == "This choice could not be drawn: size 99 is larger than the image\n"
    assert isinstance(box.last.error, ValueError) and not pick.disabled


def test_capture_runs_steps_in_order_and_stops_at_an_error():
    calls = []
    drawn, values = capture(lambda: calls.append(1) or "a", lambda: 1 / 0, lambda: calls.append(3))
    assert calls == [1] and values == ["a", None, None] and isinstance(drawn.error, ZeroDivisionError)


# --------------------------------------------------------------------------- chapters 1 and 2 (no test module of their own)


def test_architecture_explorer_shows_the_adaptive_pooling_and_refuses_in_plain_words():
    import vizlib as vl
    from vizlib.chapters import ch01
    from vizlib.methods.architecture import summary

    vgg = vl.vgg16(seed=0)
    box = ch01.architecture_explorer({"VGG-16": vgg, "AlexNet": vl.alexnet(seed=0)}, value=64)
    pick, size = box.controls
    rows = box.output.outputs[0]["text"].splitlines()
    names = [r.split()[0] for r in rows[3:-1]]
    plain = [r.name for r in summary(vgg, 64)]
    assert names == plain[:plain.index("fc6")] + ["(avgpool)"] + plain[plain.index("fc6"):]
    pooled = next(r for r in rows if r.startswith("(avgpool)"))
    assert "adaptive avg pool → 7×7 (from 2×2)" in pooled and "512×7×7" in pooled  # 512·7·7 = fc6's 25088 inputs
    assert "fc 25088→4096" in next(r for r in rows if r.startswith("fc6"))
    pick.value = "AlexNet"
    assert size.value == 64 and box.last.error is None  # the size is kept across the network change
    size.value = 32  # too small for AlexNet: said in plain words, with the smallest size it takes
    text = box.output.outputs[0]["text"]
    assert text.startswith("AlexNet cannot take a 32×32 input") and "smallest input it accepts is" in text
    assert len(box.output.outputs) == 1 and box.last.error is None


def test_receptive_field_explorer_keeps_the_unit_at_its_place_in_the_image():
    import vizlib as vl
    from vizlib.chapters import ch02

    box = ch02.receptive_field_explorer(ch02.photo(), vl.alexnet(seed=0), "c5")
    layer, y, x = box.controls
    assert (y.value, x.value, y.max) == (6, 6, 12) and box.output.outputs
    layer.value = "c1"  # 55×55 maps: the centre unit stays the centre unit
    assert (y.value, x.value, y.max) == (27, 27, 54)
    assert box.last.note == ("c1's maps are 55×55 (those of c5 13×13): the unit (y, x) = (6, 6) moved to (27, 27), "
                             "the same place in the image.")
    x.value = 0
    layer.value = "c3"
    assert (y.value, x.value, x.max) == (6, 0, 12) and box.last.error is None and not box.last.warnings
    assert not plt.get_fignums()


# --------------------------------------------------------------------------- kernel-free figures


def test_spread_keeps_the_ends_and_refuses_zero():
    from vizlib.chapters.widgets import spread

    assert spread(range(10), 4) == [0, 3, 6, 9] and spread(range(10), 1) == [0]
    assert spread("abc", 3) == list("abc") and spread([], 2) == []
    with pytest.raises(ValueError, match="n >= 1"):
        spread(range(3), 0)


def test_static_explorer_one_frame_per_state_drawn_by_the_given_function_and_nothing_from_outside():
    import base64
    import io
    import re

    from PIL import Image

    from vizlib.chapters.widgets import StaticExplorer, static_explorer

    drawn = []

    def draw(k):
        drawn.append(k)
        fig, ax = plt.subplots(figsize=(2 + k, 1.5))  # frames of different sizes are padded to one
        ax.imshow([[k, 0], [0, 1]], vmin=0, vmax=2)
        return fig

    view = static_explorer([0, 1, 2], draw, labels=["zero", "one", "two"], name="k", dpi=50)
    assert isinstance(view, StaticExplorer) and drawn == [0, 1, 2] and len(view) == 3
    assert view.labels == ["zero", "one", "two"] and "3 precomputed states (zero … two)" in repr(view)
    assert not plt.get_fignums()  # every figure closed, the state figures and the animation's
    html = view._repr_html_()
    frames = re.findall(r'"data:image/png;base64,([^"]+)"', html)
    assert len(frames) == 3 and len(set(frames)) == 3  # each state its own frame
    sizes = {Image.open(io.BytesIO(base64.b64decode(f))).size for f in frames}
    assert sizes == {view.frame_size} and view.frame_size[0] == 4 * 50  # padded to the widest (4 in at 50 dpi)
    assert 'class="vizlib-static-explorer"' in html and 'data-states="3"' in html
    assert 'type="range"' in html and "set_frame" in html  # the slider and the script that swaps frames
    # nothing loads from outside the page: matplotlib's Font Awesome link is gone, its icons are characters
    assert "font-awesome" not in html and "fa fa-" not in html and not re.search(r"(?:src|href)=\"(?:https?:)?//", html)


def test_static_explorer_limits_width_and_refuses_bad_states():
    from vizlib.chapters.widgets import static_explorer

    def wide(_):
        return plt.subplots(figsize=(20, 2))[0]

    view = static_explorer(["a"], wide, dpi=100, max_width=500)
    assert view.frame_size[0] <= 500
    with pytest.raises(ValueError, match="at least one state"):
        static_explorer([], wide)
    with pytest.raises(ValueError, match="one label per state"):
        static_explorer(["a", "b"], wide, labels=["a"])
    assert not plt.get_fignums()


def test_static_explorer_stacks_a_list_of_figures_in_one_frame():
    from vizlib.chapters.widgets import static_explorer

    one = static_explorer([0], lambda _: plt.subplots(figsize=(2, 1))[0], dpi=50)
    two = static_explorer([0], lambda _: [plt.subplots(figsize=(2, 1))[0], plt.subplots(figsize=(3, 1))[0]], dpi=50)
    assert two.frame_size[0] == 150 and two.frame_size[1] - one.frame_size[1] == 50  # one above the other
    assert not plt.get_fignums()


def test_receptive_field_static_figure_shows_each_layer_at_the_explorers_starting_unit():
    import vizlib as vl
    from vizlib.chapters import ch02

    net = vl.alexnet(seed=0)
    box = ch02.receptive_field_explorer(ch02.photo(), net, "c3")
    _, y, x = box.controls
    view = ch02.receptive_field_static(ch02.photo(), net, ["c1", "c3"])
    assert view.labels == ["c1 unit (27, 27)", f"c3 unit ({y.value}, {x.value})", "c3 unit (0, 0)"]
    assert view.html.count("data:image/jpeg;base64") == 3 and not plt.get_fignums()  # photographs: JPEG frames


def test_architecture_static_figure_draws_the_explorers_tables_at_a_few_sizes():
    import vizlib as vl
    from vizlib.chapters import ch01

    view = ch01.architecture_static({"VGG-16": vl.vgg16(seed=0)}, sizes=(64, 224))
    smallest = vl.min_input_size(vl.vgg16(seed=0)) if hasattr(vl, "min_input_size") else None
    assert view.labels[0].endswith("(its smallest)") and view.labels[-1] == "VGG-16, 224×224 input"
    assert smallest is None or view.labels[0] == f"VGG-16, {smallest}×{smallest} input (its smallest)"
    assert view.html.count("data:image/png;base64") == len(view) and not plt.get_fignums()


def test_static_explorer_jpeg_frames_for_photographs():
    from vizlib.chapters.widgets import static_explorer

    view = static_explorer([0, 1], lambda k: plt.subplots(figsize=(2, 1))[0], dpi=50, frame_format="jpeg")
    assert view.html.count("data:image/jpeg;base64") == 2 and "data:image/png" not in view.html
    assert view.frame_size[0] == 100
    with pytest.raises(ValueError, match="'png' or 'jpeg'"):
        static_explorer([0], lambda k: plt.subplots()[0], frame_format="gif")
