"""viewer/diff_text.py: two texts marked word by word, each shown as an excerpt and whole."""
from viewer.diff_text import CLIP, DEL, INS, SAME, WHOLE_CHARS, is_text_path, text_diff


def marked(side, mark):
    return [s.text for line in side.excerpt for s in line.segments if s.mark == mark]


def test_the_changed_words_are_marked_deleted_in_a_and_inserted_in_b():
    d = text_diff("The quick brown fox jumps.\nSame line.\n", "The quick red fox leaps.\nSame line.\n")
    assert marked(d.a, DEL) == ["brown", "jumps"]
    assert marked(d.b, INS) == ["red", "leaps"]
    assert (d.deleted, d.inserted) == (2, 2)
    assert [line.changed for line in d.a.excerpt] == [True, False]


def test_a_short_text_is_shown_whole_and_not_expandable():
    d = text_diff("one two three", "one two four")
    assert not d.a.shortened and not d.expandable
    assert "".join(s.text for s in d.a.excerpt[0].segments) == "one two three"


def test_a_long_text_shows_the_changed_line_with_its_neighbours_and_counts_the_rest():
    lines = [f"line {n} says nothing new" for n in range(200)]
    changed = list(lines)
    changed[120] = "line 120 says something new"
    d = text_diff("\n".join(lines), "\n".join(changed))
    shown = [line.number for line in d.b.excerpt if not line.gap]
    assert shown == [120, 121, 122]
    assert [line.gap for line in d.b.excerpt if line.gap] == [119, 78]
    assert marked(d.b, INS) == ["something"]
    assert d.b.shortened and d.b.whole is not None and len(d.b.full) == 200


def test_a_long_unchanged_run_beside_a_change_keeps_only_its_ends():
    words = " ".join(f"w{n}" for n in range(600))
    d = text_diff(words + " old end", words + " new end")
    segments = d.b.excerpt[0].segments
    assert [s.mark for s in segments] == [CLIP, SAME, INS, SAME]
    assert segments[1].text.endswith("w599 ") and len(segments[1].text) == 100


def test_a_side_without_a_change_of_its_own_shows_its_first_lines():
    text = "\n".join(f"line {n}" for n in range(40))
    d = text_diff(text, text + "\nan added line")
    assert [line.number for line in d.a.excerpt if not line.gap] == [1, 2, 3, 4, 5, 6]
    assert marked(d.b, INS) == ["an added line"]


def test_a_text_too_long_for_a_page_is_not_repeated_whole():
    big = "x " * WHOLE_CHARS
    d = text_diff(big + "a", big + "b")
    assert d.a.whole is None and d.a.full is None


def test_hostile_text_is_kept_as_text_for_the_template_to_escape():
    d = text_diff("<b>hi</b>", "<script>alert(1)</script>")
    assert "".join(s.text for line in d.b.excerpt for s in line.segments) == "<script>alert(1)</script>"


def test_a_text_path_covers_what_lies_under_it():
    assert is_text_path("response", ("prompt", "response"))
    assert is_text_path("prompt[1].content", ("prompt", "response"))
    assert not is_text_path("prompts", ("prompt",))
    assert not is_text_path("tokens.input", ("prompt", "response"))


def test_a_long_changed_run_keeps_its_ends_and_says_how_much_is_left_out():
    d = text_diff("start\n" + "a" * 6000 + "\nend", "start\n" + "b" * 6000 + "\nend")
    segments = d.b.excerpt[1].segments
    assert [s.mark for s in segments] == [INS, CLIP, INS]
    assert segments[1].text == " … 5,800 characters … "
