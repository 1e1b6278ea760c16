"""Ranking metrics against hand-computed values and a brute-force reference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosrec.errors import ConfigError
from chaosrec.model import (
    CSR,
    f1_at_k,
    metrics_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)


def reference(
    rows: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int
) -> dict[str, float]:
    """The definitions in chaosrec.model.metrics, written as plainly as possible."""
    per_user: dict[str, list[float]] = {"recall": [], "ndcg": [], "precision": [], "f1": []}
    for row, rel in zip(rows, relevant, strict=True):
        if not rel:
            continue
        seen: set[int] = set()
        hits = []
        for item in list(row)[:k]:
            hits.append(1.0 if item >= 0 and item in rel and item not in seen else 0.0)
            seen.add(item)
        n_hits = sum(hits)
        precision, recall = n_hits / k, n_hits / len(rel)
        f1 = 2 * precision * recall / (precision + recall) if n_hits else 0.0
        dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(rel))))
        for name, value in zip(per_user, (recall, dcg / idcg, precision, f1), strict=True):
            per_user[name].append(value)
    return {f"{name}@{k}": sum(v) / len(v) for name, v in per_user.items()}


def test_hand_computed_single_user() -> None:
    rec, rel = np.array([[1, 2, 3, 4]]), [{2, 4, 9}]
    # hits at positions 1 and 3 of 4; |R| = 3
    assert precision_at_k(rec, rel, k=4) == pytest.approx(0.5)
    assert recall_at_k(rec, rel, k=4) == pytest.approx(2 / 3)
    assert f1_at_k(rec, rel, k=4) == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(rec, rel, k=4) == pytest.approx(dcg / idcg)


def test_recall_is_the_standard_uncapped_definition() -> None:
    rec = np.array([[0, 1]])
    # 2 of 4 relevant found at k=2: standard recall 0.5 (the capped variant would say 1.0)
    assert recall_at_k(rec, [{0, 1, 2, 3}], k=2) == pytest.approx(0.5)
    assert ndcg_at_k(rec, [{0, 1, 2, 3}], k=2) == pytest.approx(1.0)


def test_repeated_ids_hit_once_and_negative_ids_are_padding() -> None:
    rec = np.array([[5, 5, 5], [-1, 7, -1]])
    result = metrics_at_k(rec, [{5}, {7, 8}], k=3)
    assert result["recall@3"] == pytest.approx((1.0 + 0.5) / 2)
    assert result["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)


def test_users_without_relevant_items_are_skipped() -> None:
    rec = np.array([[1], [2]])
    assert recall_at_k(rec, [set(), {2}], k=1) == pytest.approx(1.0)


def test_k_beyond_the_list_keeps_k_as_precision_denominator() -> None:
    rec = np.array([[7]])
    assert precision_at_k(rec, [{7}], k=10) == pytest.approx(0.1)
    assert recall_at_k(rec, [{7}], k=10) == pytest.approx(1.0)
    assert ndcg_at_k(rec, [{7}], k=10) == pytest.approx(1.0)


def test_csr_and_sets_agree() -> None:
    rec = np.array([[1, 2, 3], [4, 5, 6]])
    csr = CSR(np.array([0, 2, 3]), np.array([3, 9, 4]))
    assert metrics_at_k(rec, csr, k=3) == metrics_at_k(rec, [{3, 9}, {4}], k=3)


def test_metrics_at_k_keys_are_stable() -> None:
    assert list(metrics_at_k(np.array([[1]]), [{1}], k=10)) == [
        "recall@10",
        "ndcg@10",
        "precision@10",
        "f1@10",
    ]


@pytest.mark.parametrize(
    ("rec", "rel", "k", "message"),
    [
        pytest.param(np.array([1, 2]), [{1}], 1, "2-D integer", id="one-dimensional"),
        pytest.param(np.array([[0.5]]), [{1}], 1, "2-D integer", id="float-ids"),
        pytest.param(np.array([[1]]), [{1}, {2}], 1, "1 rows but relevant has 2", id="rows"),
        pytest.param(np.array([[1]]), [{1}], 0, "k=0", id="k-zero"),
        pytest.param(np.array([[1]]), [set()], 1, "every user", id="nothing-relevant"),
        pytest.param(np.array([[1]]), [{-3}], 1, "item id -3", id="negative-relevant"),
    ],
)
def test_bad_inputs_are_config_errors(
    rec: np.ndarray[Any, Any], rel: list[set[int]], k: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        metrics_at_k(rec, rel, k=k)


@st.composite
def ranking_cases(draw: st.DrawFn) -> tuple[list[list[int]], list[set[int]], int]:
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(1, 12))
    rows = [
        draw(st.lists(st.integers(-1, 15), min_size=width, max_size=width)) for _ in range(n_users)
    ]
    relevant = [draw(st.sets(st.integers(0, 15), max_size=8)) for _ in range(n_users)]
    if not any(relevant):
        relevant[0] = {draw(st.integers(0, 15))}
    return rows, relevant, draw(st.integers(1, 14))


@settings(max_examples=300, deadline=None)
@given(ranking_cases())
def test_matches_brute_force_reference(case: tuple[list[list[int]], list[set[int]], int]) -> None:
    rows, relevant, k = case
    got = metrics_at_k(np.array(rows, dtype=np.int64), relevant, k=k)
    want = reference(rows, relevant, k)
    assert got == pytest.approx(want)
    for value in got.values():
        assert 0.0 <= value <= 1.0 + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sets(st.integers(0, 50), min_size=1, max_size=15), min_size=1, max_size=5))
def test_ideal_ranking_has_unit_ndcg(relevant: list[set[int]]) -> None:
    k = 10
    rows = [sorted(r)[:k] + [-1] * (k - min(k, len(r))) for r in relevant]
    assert ndcg_at_k(np.array(rows), relevant, k=k) == pytest.approx(1.0)
    expected_recall = np.mean([min(k, len(r)) / len(r) for r in relevant])
    assert recall_at_k(np.array(rows), relevant, k=k) == pytest.approx(expected_recall)
