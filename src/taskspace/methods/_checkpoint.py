"""Checkpoints of a training run, kept beside the store.

Layout of one run's folder (default ``<store>.checkpoints/<run_id>/``)::

    state.pt            the resume state: model, optimiser, scheduler, grad scaler, RNG states,
                        the step it was taken after, the running training metrics, the wall time
                        spent; deleted when the run finishes
    model-<step>.pt     model weights at a record step (what fine-tuning starts from); which
                        steps are kept is the config's ``keep_models``
    lock                ``flock``-ed by the process training the run

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a process killed at any instant leaves the previous version or the new one,
never a torn file. A stale temporary file (from a killed writer) is ignored and removed on the next
save of the same name.

Disk cost: a model file is the network's float32 weights and buffers (MLP on digits 0.1 MB, the
small CNN 0.3 MB, ResNet-18 45 MB, ResNet-50 100 MB), once per record step with
``keep_models="records"`` (20 records by default); ``state.pt`` adds the optimiser's buffers (one
more copy of the weights for SGD with momentum, two for Adam) while the run is unfinished.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import torch

from taskspace.store.atomic import atomic_open, file_lock

_MODEL_FILE = re.compile(r"^model-(\d+)\.pt$")


def default_root(store) -> Path:
    """``<store path>.checkpoints``: a sibling of the store's directory."""
    return Path(str(store.path) + ".checkpoints")


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to ``path`` atomically and fsync-ed (`taskspace.store.atomic.atomic_open`),
    first removing what killed writers of the same file left."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(obj, f)


def load(path: Path):
    """Load a checkpoint file (tensors, numbers, strings, lists and dicts only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


class RunCheckpoints:
    """The checkpoint folder of one run."""

    def __init__(self, root, run_id: str):
        self.dir = Path(root) / run_id
        self.run_id = run_id

    @property
    def state_path(self) -> Path:
        return self.dir / "state.pt"

    def model_path(self, step: int) -> Path:
        return self.dir / f"model-{int(step)}.pt"

    def lock(self):
        """Context manager: exclusive, non-blocking ``flock``; yields whether it was acquired."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return file_lock(self.dir / "lock", blocking=False)

    # -------------------------------------------------------------- resume state
    def load_state(self) -> dict | None:
        return load(self.state_path) if self.state_path.is_file() else None

    def save_state(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        save_atomic(state, self.state_path)

    def remove_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()

    # -------------------------------------------------------------- model weights
    def model_steps(self) -> list[int]:
        """Steps with a saved model, sorted."""
        if not self.dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.dir.iterdir()
                      if (m := _MODEL_FILE.match(p.name)))

    def save_model(self, step: int, payload: dict, keep: str) -> None:
        """Save the model at ``step``; with ``keep="last"`` drop the earlier ones afterwards."""
        if keep == "none":
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        save_atomic(payload, self.model_path(step))
        if keep == "last":
            for s in self.model_steps():
                if s != step:
                    with contextlib.suppress(FileNotFoundError):
                        self.model_path(s).unlink()

    def load_model(self, step: int) -> dict:
        path = self.model_path(step)
        if not path.is_file():
            kept = self.model_steps()
            raise ValueError(
                f"run {self.run_id!r} has no model checkpoint at step {step} in {self.dir}; "
                f"it has checkpoints at steps {kept if kept else 'none'} (the run's "
                "`keep_models` decides which are kept)")
        return load(path)
