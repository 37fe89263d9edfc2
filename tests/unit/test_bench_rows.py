"""The bench's rows say "better" the same way whatever their unit."""

from __future__ import annotations

import math

from bench.rows import Row


def test_a_ratio_above_one_means_sieve_is_better_either_way() -> None:
    assert Row("faster", 10.0, 5.0, "pages/s").ratio == 2.0
    assert Row("fewer", 5.0, 10.0, "tok/item", higher_is_better=False).ratio == 2.0
    assert Row("slower", 5.0, 10.0, "pages/s").ratio == 0.5


def test_a_row_without_a_measurement_has_no_ratio() -> None:
    assert math.isnan(Row("none", 0.0, 5.0, "pages/s").ratio)
    assert set(Row("x", 1.0, 2.0, "u").as_json()) == {
        "name",
        "sieve",
        "baseline",
        "unit",
        "ratio",
        "notes",
    }
