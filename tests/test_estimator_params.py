"""The estimators' parameter rules (taskspace.geometry.estimator_params), case by case."""

import numpy as np
import pytest

from taskspace.geometry import estimator_params as rules


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (rules.IntAtLeast(1), [1, 7, np.int64(3)], [0, -1, 2.0, True, None, "2"]),
        (rules.IntAtLeast(1, none=True), [None, 1], [0, False]),
        (rules.RealBetween(0, 1), [1e-9, 0.5, np.float32(0.25)], [0, 1, 0.0, 1.5, True, "0.5"]),
        (rules.OneOf({"a", "b"}), ["a", "b"], ["c", None, 1]),
        (rules.RandomState(), [None, 0, np.random.RandomState(0)], [1.5, True, "0"]),
        (rules.FlagOrCallable(), [True, False, print], [None, 1, "yes"]),
    ],
)
def test_rules_accept_exactly_their_values(rule, good, bad):
    assert all(rule.accepts(v) for v in good)
    assert not any(rule.accepts(v) for v in bad)


def test_message_names_owner_parameter_rule_and_value():
    with pytest.raises(
        ValueError,
        match=r"^The 'eps' parameter of InPCA must be a float in the "
        r"range \(0, 1\)\. Got 2 instead\.$",
    ):
        rules.check_params("InPCA", {"eps": 2, "other": object()}, {"eps": rules.RealBetween(0, 1)})
