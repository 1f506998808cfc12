"""The trajectory store: the only place that reads and writes prediction files (DESIGN.md).

``Store`` keeps trajectories of models on one probe set and label space in a Zarr directory, with
their metadata, atomic appends and a cache of distance matrices; ``import_h5`` brings in the HDF5
prediction files that the authors of the paper published, ``import_arrays`` a folder of NumPy (or
PyTorch) prediction arrays with a metadata table.
"""

from taskspace.store.checksums import CorruptStoreError
from taskspace.store.collection import LazyCollection
from taskspace.store.importers import import_arrays, import_h5
from taskspace.store.store import Store, Trajectory

__all__ = [
    "CorruptStoreError",
    "LazyCollection",
    "Store",
    "Trajectory",
    "import_arrays",
    "import_h5",
]
