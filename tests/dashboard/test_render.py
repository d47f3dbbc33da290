"""What the templates are given: redaction at any depth, cut previews, readable durations and times."""

from __future__ import annotations

from datetime import UTC, datetime

from scalr_queue.dashboard._chart import sparkline
from scalr_queue.dashboard._render import REDACTED, age, ago, environment, preview, redact, when


def test_redaction_reaches_nested_keys_in_any_case_and_leaves_the_rest() -> None:
    keys = frozenset({"password", "token"})
    value = {"Password": "a", "user": {"TOKEN": "b", "name": "c"}, "items": [{"token": "d"}, "e"], "n": 1}
    assert redact(value, keys) == {
        "Password": REDACTED,
        "user": {"TOKEN": REDACTED, "name": "c"},
        "items": [{"token": REDACTED}, "e"],
        "n": 1,
    }


def test_preview_cuts_long_values_and_says_how_long_they_were() -> None:
    short = preview({"a": 1}, 100)
    assert not short.cut and short.text == '{\n  "a": 1\n}'
    long = preview(["x" * 50] * 100, 200)
    assert long.cut and len(long.text) == 200 and long.size > 5000


def test_durations_read_at_the_right_scale() -> None:
    assert [
        age(None),
        age(-5),
        age(850),
        age(12_300),
        age(245_000),
        age(7_380_000),
        age(3 * 86_400_000 + 4 * 3_600_000),
    ] == [
        "-",
        "0ms",
        "850ms",
        "12.3s",
        "4m 05s",
        "2h 03m",
        "3d 4h",
    ]


def test_times_are_utc_to_the_millisecond() -> None:
    moment = datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC)
    assert when(moment) == "2026-12-02 01:02:03.456 UTC"
    assert when(moment.timestamp() * 1000) == "2026-12-02 01:02:03.456 UTC"
    assert when(None) == "-" and ago(None) == "-"
    assert ago(moment).endswith(" ago")


def test_templates_escape_everything_they_are_given() -> None:
    template = environment().from_string("<p>{{ value }}</p>")
    assert template.render(value="<script>x</script>") == "<p>&lt;script&gt;x&lt;/script&gt;</p>"


def test_sparkline_is_numbers_only_and_escapes_its_label() -> None:
    svg = str(sparkline([0, 2, 4], [1, 0, 0], label='<b>"x"</b>'))
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert svg.count("<polyline") == 2
    assert 'points="1.0,27.0' in svg, "the first bucket of zero sits on the baseline"


def test_docs_settings_table_is_what_the_settings_render() -> None:
    from scalr_queue.dashboard._settings import render_table
    from tests.support import ROOT

    assert render_table() in (ROOT / "docs" / "dashboard.md").read_text(), (
        "docs/dashboard.md's settings table is out of date; paste in render_table()'s output"
    )
