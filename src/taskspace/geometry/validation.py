"""Validation at the boundary: the checks the geometry makes, for other packages to make too.

The store, the importers and the distributed backend check probe labels, prediction blocks, the
metric and ``eps`` exactly as the geometry does, with the same messages (which array, which
index, what is wrong; DESIGN.md). This module is their public home; the implementation (and its
numba kernel) lives in ``_validation``.
"""

from taskspace.geometry._validation import (
    METRICS,
    as_class_indices,
    as_labels,
    as_probabilities,
    check_array_like,
    check_eps,
    check_metric,
    check_rows,
)

__all__ = [
    "METRICS",
    "as_class_indices",
    "as_labels",
    "as_probabilities",
    "check_array_like",
    "check_eps",
    "check_metric",
    "check_rows",
]
