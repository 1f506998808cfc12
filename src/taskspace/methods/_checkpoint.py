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

Every file is verified on load: it is one header line, ``taskspace-checkpoint sha256=<64 hex>``,
then the bytes of ``torch.save``, and the sha256 of those bytes must equal the header's (a flipped
byte is a :class:`CorruptCheckpointError` naming the file, never a model used silently); the
bytes are then loaded with ``torch.load(weights_only=True)``, which runs no code from the file.
Files written before the header existed (a plain ``torch.save`` zip archive) are loaded
unverified, with a warning naming them: the legacy path. ``torch.load`` alone does not read the
new files; :func:`load` does.

Disk cost: a model file is the network's float32 weights and buffers (MLP on digits 0.1 MB, the
small CNN 0.3 MB, ResNet-18 45 MB, ResNet-50 100 MB), once per record step with
``keep_models="records"`` (20 records by default); ``state.pt`` adds the optimiser's buffers (one
more copy of the weights for SGD with momentum, two for Adam) while the run is unfinished.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import warnings
from pathlib import Path

import torch

from taskspace.store.atomic import atomic_open, disk_full_reported, file_lock

_MODEL_FILE = re.compile(r"^model-(\d+)\.pt$")


def default_root(store) -> Path:
    """``<store path>.checkpoints``: a sibling of the store's directory."""
    return Path(str(store.path) + ".checkpoints")


#: Start of a checkpoint file's header line; the sha256 (64 hex digits) and a newline follow.
MAGIC = b"taskspace-checkpoint sha256="
_HEADER = len(MAGIC) + 64 + 1
#: A plain ``torch.save`` file (a zip archive): a checkpoint from before the header (legacy).
_ZIP = b"PK\x03\x04"


class CorruptCheckpointError(ValueError):
    """A checkpoint file does not hold the bytes that were saved (damaged or edited)."""


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to ``path`` with its digest header, atomically and fsync-ed
    (`taskspace.store.atomic.atomic_open`), first removing what killed writers of the same file
    left. Serialised in memory first: the digest needs the bytes, and a full disk then fails in
    a plain write (`taskspace.store.atomic.DiskFullError`), not inside torch's archive writer."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getbuffer()
    header = MAGIC + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n"
    with disk_full_reported(f"checkpoint {path}"), atomic_open(path, "wb", fsync=True) as f:
        f.write(header)
        f.write(data)


def load(path: Path):
    """Load a checkpoint file, verified against its digest (tensors, numbers, strings, lists and
    dicts only: ``torch.load(weights_only=True)``).

    Raises
    ------
    CorruptCheckpointError
        The file's bytes do not match its digest, or it is neither a checkpoint nor a legacy
        ``torch.save`` file.
    """
    path = Path(path)
    raw = memoryview(path.read_bytes())
    if raw[: len(_ZIP)] == _ZIP:
        warnings.warn(
            f"checkpoint {path} was written before checkpoint digests: loaded "
            "unverified (the legacy path; it gets a digest when saved again)",
            stacklevel=2,
        )
        body = raw
    else:
        expected = bytes(raw[len(MAGIC) : _HEADER - 1])
        if raw[: len(MAGIC)] != MAGIC or raw[_HEADER - 1 : _HEADER] != b"\n":
            raise CorruptCheckpointError(
                _damaged(path, "it does not start with the checkpoint header")
            )
        body = raw[_HEADER:]
        if hashlib.sha256(body).hexdigest().encode("ascii") != expected:
            raise CorruptCheckpointError(
                _damaged(
                    path, "its bytes do not match the digest in its header (damaged or edited)"
                )
            )
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)


def _damaged(path: Path, problem: str) -> str:
    what = (
        (
            "the resume state: delete it and the run trains again from step 0 (its stored "
            "records are kept)"
        )
        if path.name == "state.pt"
        else "a model checkpoint: delete it and retrain its run to make it again"
    )
    return f"checkpoint {path} is damaged: {problem}; it is {what}"


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
        return sorted(
            int(m.group(1)) for p in self.dir.iterdir() if (m := _MODEL_FILE.match(p.name))
        )

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
                "`keep_models` decides which are kept)"
            )
        return load(path)
