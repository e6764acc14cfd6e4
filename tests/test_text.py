"""How numbers, durations and log strings read (viewer/text.py): one module for every face."""
import pytest

from viewer import text


@pytest.mark.parametrize(
    "ms, shown",
    [(None, "–"), (0, "0.0 ms"), (22.0, "22.0 ms"), (999.9, "999.9 ms"), (999.96, "1.00 s"), (1166, "1.17 s"),
     (9_999, "10.0 s"), (59_000, "59.0 s"), (59_960, "1 min 00 s"), (60_000, "1 min 00 s"),
     (181_547, "3 min 02 s"), (1126958.772, "18 min 47 s"), (3_599_600, "1 h 00 min"),
     (3_723_000, "1 h 02 min"), (90_000_000, "1 d 01 h"), (-5, "-5.0 ms"), (float("nan"), "–")],
)
def test_durations_read_as_people_read_them_never_as_a_pile_of_ms(ms, shown):
    assert text.duration(ms) == shown


def test_a_signed_duration_says_its_direction():
    assert [text.duration(v, signed=True) for v in (1500, -1500, 0)] == ["+1.50 s", "-1.50 s", "0.0 ms"]


def test_the_cli_duration_is_exactly_dynoai_s():
    assert [text.cli_duration(v) for v in (22.0, 1166, None)] == ["22.0ms", "1.17s", "–"]


@pytest.mark.parametrize(
    "ms, shown",
    [(None, ""), (22.0, "+22.0 ms"), (1500, "+1.50 s"), (62_500, "+1:02.5"), (59_999, "+1:00.0"),
     (3_723_000, "+1:02:03"), (-800, "-800.0 ms")],
)
def test_a_clock_shows_a_position_in_the_run(ms, shown):
    assert text.clock(ms) == shown


def test_numbers_group_thousands():
    assert [text.number(v) for v in (1234567, 2.0, 1234.5, None)] == ["1,234,567", "2", "1,234.5", "–"]
    assert text.number(3.14159, 2) == "3.14"


def test_plot_text_escapes_markup_and_shows_bidi_controls():
    assert text.plot_text("<b>x</b> \u202egnp.exe") == "&lt;b&gt;x&lt;/b&gt; &lt;U+202E&gt;gnp.exe"
    assert text.inert("a\u2066b") == "a<U+2066>b"
