"""Bad input fails at the boundary with a message naming the argument, the index and the problem."""

import numpy as np
import pytest

import taskspace as ts
from taskspace.geometry.validation import as_labels, as_probabilities, check_rows


def good(shape=(3, 4, 5)):
    return np.full(shape, 1.0 / shape[-1])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (np.nan, "non-finite value \\(nan\\)"),
        (np.inf, "non-finite value \\(inf\\)"),
        (-0.25, "negative entry \\(-0.25\\)"),
    ],
)
def test_bad_entries_name_argument_index_and_problem(value, problem):
    P = good()
    P[1, 2, 3] = value
    with pytest.raises(ValueError, match=rf"`Q` .*{problem} at index \(1, 2, 3\)"):
        as_probabilities("Q", P)
    with pytest.raises(ValueError, match=r"`Q`"):
        ts.bhattacharyya(good(), P)


def test_row_sum_reports_row_index_and_sum():
    P = good()
    P[2, 1] *= 0.5
    msg = r"`P` has a row that sums to 0.5, not 1 .* at index \(2, 1\)"
    with pytest.raises(ValueError, match=msg):
        ts.hellinger(P, good())


def test_rows_that_look_like_logits_suggest_softmax():
    logits = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"negative entry .*apply a softmax over the class axis"):
        ts.bhattacharyya(logits, good((4, 3)))
    scores = np.abs(logits)
    with pytest.raises(ValueError, match=r"sums to .*apply a softmax over the class axis"):
        ts.bhattacharyya(good((4, 3)), scores)


def test_row_sum_tolerance_is_1e_3():
    P = good((2, 4))
    P[0, 0] += 0.0009  # within tolerance: accepted
    assert np.isfinite(ts.bhattacharyya(P, good((2, 4))))
    P[0, 0] += 0.0002  # now off by 1.1e-3
    with pytest.raises(ValueError, match="sums to"):
        ts.bhattacharyya(P, good((2, 4)))


def test_first_bad_index_in_c_order_wins():
    P = good()
    P[2, 0, 0] = np.nan
    P[0, 3, 1] = -1.0
    with pytest.raises(ValueError, match=r"negative entry .* at index \(0, 3, 1\)"):
        as_probabilities("P", P)


def test_streamed_chunk_offset_points_into_user_array():
    block = good((3, 4, 5))
    block[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"at index \(1, 102, 0\)"):
        check_rows("X", block, offset=(0, 100))


@pytest.mark.parametrize(
    ("P", "match"),
    [
        (np.zeros((0, 4, 5)), "`P` is empty: axis 0 has length 0"),
        (np.zeros((3, 0, 5)), "`P` is empty: axis 1"),
        (np.full(5, 0.2), "at least 2 dimensions"),
        (np.full((2, 3), 1 / 3, dtype=complex), "real numbers"),
        (np.array([["a", "b"]]), "real numbers"),
    ],
)
def test_rank_empty_dtype(P, match):
    with pytest.raises(ValueError, match=match):
        ts.bhattacharyya(P, P)


def test_ragged_input():
    with pytest.raises(ValueError, match="`P`"):
        as_probabilities("P", [[0.5, 0.5], [1.0]])


def test_float32_and_integer_inputs_accepted_and_float64_out():
    P32 = good((2, 3, 4)).astype(np.float32)
    assert ts.bhattacharyya(P32, P32).dtype == np.float64
    onehot = np.eye(3, dtype=np.int64)
    assert ts.geodesic_distance(onehot, onehot).dtype == np.float64


def test_labels_validation():
    assert as_labels("labels", [0, 2, 1], 3, 3).dtype == np.int64
    with pytest.raises(ValueError, match="outside \\[0, 3\\)"):
        as_labels("labels", [0, 3, 1], 3, 3)
    with pytest.raises(ValueError, match="has 2 labels but the models have N = 3"):
        as_labels("labels", [0, 1], 3, 3)
    with pytest.raises(ValueError, match=r"integer class indices; index 1 is 0\.5"):
        as_labels("labels", [0, 0.5, 1], 3, 3)
    with pytest.raises(ValueError, match="1-D"):
        as_labels("labels", [[0, 1, 2]], 3, 3)
