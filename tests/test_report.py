"""Text tables: one line per row, whatever the names in the file hold."""

from __future__ import annotations

from minigraph.report import render_table


def test_a_name_with_line_breaks_stays_on_its_row():
    text = render_table(("const", "dtype"), [("a\nminigraph: error: forged\r", "DT_FLOAT"),
                                             ("b", "DT_HALF")])
    lines = text.splitlines()
    assert len(lines) == 4  # header, rule, two rows
    assert lines[2].startswith(r"a\nminigraph: error: forged\r  DT_FLOAT")
