"""Tables and seed aggregates for the CLI and the benchmark scripts."""

from __future__ import annotations

import pytest

from midebias.report import format_table, mean_std


def test_mean_std_skips_missing_values_and_gives_zero_std_for_one_value():
    rows = [{"acc": 0.2, "dp": None}, {"acc": 0.4}, {"acc": 0.6, "dp": 0.1}]
    out = mean_std(rows, ["acc", "dp", "absent"])
    assert out["acc"] == pytest.approx(0.4) and out["acc_std"] == pytest.approx(0.2)
    assert out["dp"] == pytest.approx(0.1) and out["dp_std"] == 0.0
    assert "absent" not in out and "absent_std" not in out


def test_format_table_aligns_columns_and_marks_missing_values():
    text = format_table([{"a": 1, "b": 0.5}, {"a": 22}], ["a", "b"])
    assert text.splitlines() == ["a   b    ", "--  -----", "1   0.500", "22  -    "]
