"""Imprinting (SPEC §11) and checkpoint schedules (SPEC §13)."""

import numpy as np
import pytest

from taskspace.record import checkpoint_schedule, class_prototypes, imprint


def test_prototypes_are_class_means():
    f = np.array([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0]])
    protos = class_prototypes(f, [0, 0, 1], 2)
    np.testing.assert_array_equal(protos, [[1.0, 2.0], [10.0, 10.0]])


def test_imprint_is_softmax_of_negative_squared_distances():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(7, 4)) * 3
    mu = rng.normal(size=(5, 4))
    logits = -((f[:, None, :] - mu[None, :, :]) ** 2).sum(-1)  # written plainly
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    P = imprint(f, mu)
    assert P.dtype == np.float64
    np.testing.assert_allclose(P, expected, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-14)


def test_imprint_far_from_prototypes_does_not_overflow():
    f = np.array([[1e4, 0.0]])
    P = imprint(f, np.array([[0.0, 0.0], [1.0, 0.0]]))
    assert np.all(np.isfinite(P)) and P[0, 1] == pytest.approx(1.0)


def test_missing_class_in_imprint_set_is_an_error():
    with pytest.raises(ValueError, match=r"no sample of class\(es\) \[2\]"):
        class_prototypes(np.zeros((3, 2)), [0, 1, 1], 3)
    with pytest.raises(ValueError, match="must lie in"):
        class_prototypes(np.zeros((3, 2)), [0, 1, 5], 3)


def test_log_schedule_dense_early_with_both_ends():
    steps = checkpoint_schedule(1000, "log", 12)
    assert steps[0] == 0 and steps[-1] == 1000
    assert np.all(np.diff(steps) > 0)
    gaps = np.diff(steps)
    assert gaps[0] < gaps[-1] / 10  # geometric: early gaps much smaller than late ones
    assert len(steps) <= 12


def test_linear_and_explicit_schedules():
    np.testing.assert_array_equal(checkpoint_schedule(10, "linear", 6), [0, 2, 4, 6, 8, 10])
    np.testing.assert_array_equal(checkpoint_schedule(10, [5, 0, 5, 10]), [0, 5, 10])
    with pytest.raises(ValueError, match=r"lie in \[0, 10\]"):
        checkpoint_schedule(10, [0, 11])
    with pytest.raises(ValueError, match="unknown schedule"):
        checkpoint_schedule(10, "cosine")
    with pytest.raises(ValueError, match="total_steps"):
        checkpoint_schedule(0)


def test_log_schedule_fewer_steps_only_where_rounding_merges_them_as_documented():
    """checkpoint_schedule(1000, "log", 30): 27 distinct steps, and the docstring says why."""
    steps = checkpoint_schedule(1000, "log", 30)
    assert len(steps) == 27 and steps[0] == 0 and steps[-1] == 1000
    assert np.all(np.diff(steps) > 0)
    # the missing ones are exactly the geometric points that round onto a neighbour
    points = np.round(np.geomspace(1, 1000, 29))
    assert len(points) - len(np.unique(points)) == 30 - 27
    doc = checkpoint_schedule.__doc__
    assert 'checkpoint_schedule(1000, "log", 30)' in doc and "27 distinct" in doc
    # where the spacing leaves room, exactly n_records
    assert len(checkpoint_schedule(300, "log", 12)) == 12
    assert len(checkpoint_schedule(10**6, "log", 30)) == 30
