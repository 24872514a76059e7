"""Guidance for small tables: an evaluation set too small for stable metrics is flagged (the arbiter adds the
warning to the job record, the log, the CLI output and the report)."""

from __future__ import annotations

from arbiter.runner import MIN_EVALUATION_BADS, MIN_EVALUATION_ROWS, small_evaluation_warnings


def test_small_evaluation_set_warns() -> None:
    (few_rows,) = small_evaluation_warnings(114, 42)
    assert "114 rows" in few_rows and f"at least {MIN_EVALUATION_ROWS} rows" in few_rows
    (few_bads,) = small_evaluation_warnings(5000, 7)
    assert "7 bads" in few_bads and f"{MIN_EVALUATION_BADS} bads" in few_bads
    assert small_evaluation_warnings(5000, 300) == []
    assert small_evaluation_warnings(None, None) == []
