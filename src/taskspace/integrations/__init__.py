"""Recorder callbacks for training frameworks (optional extras; DESIGN.md).

- :mod:`taskspace.integrations.lightning`: ``RecorderCallback`` for ``lightning.Trainer``
  (``pip install 'taskspace[lightning]'``).
- :mod:`taskspace.integrations.transformers`: ``RecorderCallback`` for ``transformers.Trainer``
  (``pip install 'taskspace[transformers]'``).

- :mod:`taskspace.integrations.tensorboard`, :mod:`taskspace.integrations.wandb`: trackers that
  log each record's progress, distances and length and the InPCA picture
  (``pip install 'taskspace[tensorboard]'`` / ``'taskspace[wandb]'``); what they share is in
  :mod:`taskspace.integrations.trackers`, :mod:`taskspace.integrations.loggers`.

Each module imports its framework when it is imported itself; this package imports neither, and
``import taskspace`` imports neither.
"""
