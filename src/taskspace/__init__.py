"""taskspace: the picture of the space of learning tasks.

Each training run becomes a trajectory of probabilistic models in prediction space; taskspace
measures that space with information geometry (see SPEC.md): Bhattacharyya distances, geodesics on a
product of spheres, progress towards the truth, trajectory lengths and comparisons, and InPCA.
"""

from taskspace._version import __version__
from taskspace.geometry import (
    InPCA,
    average,
    bhattacharyya,
    compare_trajectories,
    distance_to_trajectory,
    exp_map,
    frechet_distance,
    geodesic_distance,
    hellinger,
    interpolate,
    length,
    log_map,
    pairwise_distances,
    progress,
    reparameterize,
    symmetric_kl,
    velocity,
)
from taskspace.record import Recorder, checkpoint_schedule
from taskspace.store import Store

__all__ = [
    "InPCA",
    "Recorder",
    "Store",
    "__version__",
    "average",
    "bhattacharyya",
    "checkpoint_schedule",
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
    "symmetric_kl",
    "train_run",
    "velocity",
]


def __getattr__(name):
    # Training pulls in torch; keep `import taskspace` (and the geometry) free of it until asked.
    if name == "train_run":
        from taskspace.methods import train_run

        return train_run
    raise AttributeError(f"module 'taskspace' has no attribute {name!r}")
