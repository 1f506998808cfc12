"""Import of predictions made elsewhere into a store: the authors' HDF5 files, folders of arrays."""

from taskspace.store.importers.arrays import import_arrays
from taskspace.store.importers.h5 import import_h5

__all__ = ["import_arrays", "import_h5"]
