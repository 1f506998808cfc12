"""Progress reporting: the geometry calls its caller's callback; the UI's bar is the default."""

import numpy as np
import pytest

from taskspace.geometry import callbacks, pairwise_distances
from taskspace.geometry.landmarks import farthest_point_landmarks


class Counter:
    """A progress factory that records what a loop reports."""

    def __init__(self):
        self.opened, self.advanced = [], []

    def __call__(self, total, description):
        self.opened.append((total, description))
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def advance(self, n=1):
        self.advanced.append(n)


def _models(rng, M=4, N=37, C=5):
    X = rng.random((M, N, C))
    return X / X.sum(-1, keepdims=True)


def test_pairwise_reports_every_sample_through_the_callback():
    rng = np.random.default_rng(0)
    X = _models(rng)
    counter = Counter()
    D = pairwise_distances(X, chunk_size=8, progress=counter)
    assert counter.opened == [(37, "pairwise distances (samples)")]
    assert sum(counter.advanced) == 37 and len(counter.advanced) == 5  # ceil(37 / 8) chunks
    np.testing.assert_allclose(D, pairwise_distances(X), rtol=0, atol=1e-12)


def test_landmarks_report_one_unit_per_column():
    D = np.abs(np.subtract.outer(np.arange(6.0), np.arange(6.0)))
    counter = Counter()
    chosen, _ = farthest_point_landmarks(lambda i: D[:, i], 6, 3, progress=counter)
    assert counter.opened[0][0] == 4 and sum(counter.advanced) == 4
    assert list(chosen) == [5, 0, 2] or list(chosen) == [5, 0, 3]


def test_false_reports_nothing_and_bad_values_are_refused():
    assert callbacks.as_factory(False) is None and callbacks.as_factory(None) is None
    with pytest.raises(TypeError, match="progress must be"):
        callbacks.as_factory("yes")


def test_the_ui_installs_the_default_bar():
    from taskspace.ui import progress as ui

    assert callbacks.as_factory(True) is ui.progress_bar
    assert ui.as_factory(True) is ui.progress_bar and ui.as_factory(False) is None
    previous = callbacks.set_default_progress(None)
    try:
        assert callbacks.as_factory(True) is None
    finally:
        callbacks.set_default_progress(previous)
