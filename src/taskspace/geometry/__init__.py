"""Information geometry of prediction space (SPEC.md §1–10, §14): pure arrays in, arrays out.

No files and no torch at import time; every function accepts array-likes that slice like NumPy.
"""

# First, before any kernel is compiled or loaded from cache: 512-bit vectors on AVX-512 hosts.
from taskspace.geometry import _numba_target  # noqa: F401  (isort: skip)

from taskspace.geometry.distances import (
    DEFAULT_EPS,
    bhattacharyya,
    bhattacharyya_coefficients,
    geodesic_distance,
    hellinger,
    sample_angles,
    squared_chords,
    symmetric_kl,
)
from taskspace.geometry.geodesic import interpolate
from taskspace.geometry.inpca import InPCA
from taskspace.geometry.landmarks import LandmarkInPCA
from taskspace.geometry.pairwise import pairwise_distances
from taskspace.geometry.progress import progress
from taskspace.geometry.tangent import exp_map, log_map, velocity
from taskspace.geometry.trajectories import (
    average,
    compare_trajectories,
    distance_to_trajectory,
    frechet_distance,
    length,
    reparameterize,
)

__all__ = [
    "DEFAULT_EPS",
    "InPCA",
    "LandmarkInPCA",
    "average",
    "bhattacharyya",
    "bhattacharyya_coefficients",
    "compare_trajectories",
    "distance_to_trajectory",
    "exp_map",
    "frechet_distance",
    "geodesic_distance",
    "hellinger",
    "interpolate",
    "length",
    "log_map",
    "pairwise_distances",
    "progress",
    "reparameterize",
    "sample_angles",
    "squared_chords",
    "symmetric_kl",
    "velocity",
]
