"""Recorder callbacks for training frameworks (optional extras; DESIGN.md).

- :mod:`taskspace.integrations.lightning`: ``RecorderCallback`` for ``lightning.Trainer``
  (``pip install 'taskspace[lightning]'``).
- :mod:`taskspace.integrations.transformers`: ``RecorderCallback`` for ``transformers.Trainer``
  (``pip install 'taskspace[transformers]'``).

Each module imports its framework when it is imported itself; this package imports neither, and
``import taskspace`` imports neither.
"""
