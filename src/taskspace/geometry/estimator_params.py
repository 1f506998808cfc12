"""Checks of the estimators' constructor parameters (`InPCA`, `LandmarkInPCA`), at ``fit``.

scikit-learn's estimators declare ``_parameter_constraints`` and check them with the private
``sklearn.utils._param_validation``, whose names and signatures change between releases; taskspace
imports only scikit-learn's public API, so its estimators declare ``_param_rules`` with the few
rules below and `check_params` checks them. Messages follow scikit-learn's wording (``The 'metric'
parameter of InPCA must be a str among [...]. Got 'euclidean' instead.``), so users of both see
one style. A bool is never an int here (``n_components=True`` is a mistake, not 1).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class IntAtLeast:
    """An int ≥ ``low`` (bools refused), or None when ``none`` is True."""

    low: int
    none: bool = False

    def accepts(self, value) -> bool:
        return (self.none and value is None) or (_is_int(value) and value >= self.low)

    def __str__(self) -> str:
        return f"an int ≥ {self.low}" + (" or None" if self.none else "")


@dataclass(frozen=True)
class RealBetween:
    """A real number in the open interval (``low``, ``high``); bools refused."""

    low: float
    high: float

    def accepts(self, value) -> bool:
        return (
            isinstance(value, Real)
            and not isinstance(value, bool)
            and self.low < float(value) < self.high
        )

    def __str__(self) -> str:
        return f"a float in the range ({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class OneOf:
    """One of the strings ``options``."""

    options: frozenset[str]

    def __init__(self, options: Collection[str]):
        object.__setattr__(self, "options", frozenset(options))

    def accepts(self, value) -> bool:
        return isinstance(value, str) and value in self.options

    def __str__(self) -> str:
        return f"a str among {sorted(self.options)}"


class RandomState:
    """What `sklearn.utils.check_random_state` takes: None, an int or a NumPy ``RandomState``."""

    def accepts(self, value) -> bool:
        return value is None or _is_int(value) or isinstance(value, np.random.RandomState)

    def __str__(self) -> str:
        return "an int, a numpy RandomState or None"


class FlagOrCallable:
    """A bool, or a callable (a progress factory, `taskspace.geometry.callbacks`)."""

    def accepts(self, value) -> bool:
        return isinstance(value, bool) or callable(value)

    def __str__(self) -> str:
        return "a bool or a callable"


def check_params(owner: str, params: Mapping[str, object], rules: Mapping[str, object]) -> None:
    """Raise if a parameter breaks its rule.

    Parameters
    ----------
    owner : str
        The estimator's class name, for the message.
    params : mapping
        Parameter name → value (``estimator.get_params(deep=False)``).
    rules : mapping
        Parameter name → rule (an object with ``accepts(value)`` and a ``str`` that describes
        what it accepts). Parameters without a rule are not checked.

    Raises
    ------
    ValueError
        Naming the parameter, what it must be and the value it got.

    Examples
    --------
    >>> check_params("InPCA", {"solver": "dense"}, {"solver": OneOf({"dense", "partial"})})
    >>> check_params("InPCA", {"solver": "arpack"}, {"solver": OneOf({"dense", "partial"})})
    Traceback (most recent call last):
    ...
    ValueError: The 'solver' parameter of InPCA must be a str among ['dense', 'partial']. Got 'arpack' instead.
    """  # noqa: E501
    for name, rule in rules.items():
        value = params[name]
        if not rule.accepts(value):
            raise ValueError(
                f"The {name!r} parameter of {owner} must be {rule}. Got {value!r} instead."
            )
