"""taskspace: the picture of the space of learning tasks.

Each training run becomes a trajectory of probabilistic models in prediction space; taskspace
measures that space with information geometry (see SPEC.md): Bhattacharyya distances, geodesics on a
product of spheres, progress towards the truth, trajectory lengths and comparisons, and InPCA.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from taskspace._version import __version__  # noqa: F401 (in __all__, built below)

# The public names are imported on first use (PEP 562), not with the package: `import taskspace`
# and every `taskspace ...` command, `--help` included, would otherwise pay for NumPy, SciPy,
# scikit-learn, numba, Zarr and pandas (seconds; docs/performance.md) before reading an argument.
_GEOMETRY = (
    "InPCA",
    "LandmarkInPCA",
    "average",
    "bhattacharyya",
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
    "velocity",
)
#: Public name → the module that defines it.
_HOMES = {
    **dict.fromkeys(_GEOMETRY, "taskspace.geometry"),
    "Recorder": "taskspace.record",
    "checkpoint_schedule": "taskspace.record",
    "Store": "taskspace.store",
    "CorruptStoreError": "taskspace.store",
    "train_run": "taskspace.methods",
    "log_picture": "taskspace.integrations.loggers",
}

__all__ = sorted([*_HOMES, "__version__"])

if TYPE_CHECKING:  # what static tools see: the names as if imported here
    from taskspace.geometry import (  # noqa: F401
        InPCA,
        LandmarkInPCA,
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
    from taskspace.integrations.loggers import log_picture  # noqa: F401
    from taskspace.methods import train_run  # noqa: F401
    from taskspace.record import Recorder, checkpoint_schedule  # noqa: F401
    from taskspace.store import CorruptStoreError, Store  # noqa: F401


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        # `import taskspace` then `taskspace.<subpackage>.<name>`: a subpackage is found by
        # attribute, imported on first use like the public names.
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module 'taskspace' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    # ``progress=True`` in the geometry draws the terminal bar once the UI has installed it.
    importlib.import_module("taskspace.ui.progress")
    globals()[name] = value  # found once; later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
