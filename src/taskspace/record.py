"""Recording models in one prediction space (SPEC §11, §13).

Imprinting maps a network trained on *any* task with *any* method to a model over the whole label
space, so that runs on different tasks become points of one space and can be compared.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

import numpy as np
from scipy.special import log_softmax


def class_prototypes(features, labels, n_classes: int) -> np.ndarray:
    """Mean representation of each class: ``μ_c = mean{f(x) : y(x) = c}`` (SPEC §11).

    Parameters
    ----------
    features : array_like, shape (S, h)
        Representations of the imprint set.
    labels : array_like of int, shape (S,)
        Their classes in ``[0, n_classes)``; every class must occur at least once.
    n_classes : int
        Size C of the label space.

    Returns
    -------
    ndarray of float64, shape (C, h)
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"`features` must be (S, h) and `labels` (S,), got {features.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"`labels` must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]"
        )
    counts = np.bincount(labels, minlength=n_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(
            f"the imprint set has no sample of class(es) {missing.tolist()}: every class of the "
            "label space needs at least one to define its prototype"
        )
    sums = np.zeros((n_classes, features.shape[1]))
    np.add.at(sums, labels, features)
    return sums / counts[:, None]


def imprint(features, prototypes) -> np.ndarray:
    """Imprinted predictions ``P(c|x) = softmax_c(−‖f(x) − μ_c‖²)``, in float64 (SPEC §11).

    Parameters
    ----------
    features : array_like, shape (N, h)
        Representations of the probe set.
    prototypes : array_like, shape (C, h)
        Class prototypes from :func:`class_prototypes`.

    Returns
    -------
    ndarray of float64, shape (N, C)
        Rows sum to 1.
    """
    f = np.asarray(features, dtype=np.float64)
    mu = np.asarray(prototypes, dtype=np.float64)
    # Expanded ‖f − μ‖² = ‖f‖² − 2 f·μ + ‖μ‖²; the ‖f‖² term is constant per row and cancels in
    # the softmax, so it is left out (it only costs precision when ‖f‖ is large).
    logits = 2.0 * f @ mu.T - np.einsum("ch,ch->c", mu, mu)[None, :]
    return np.exp(log_softmax(logits, axis=1))


def checkpoint_schedule(total_steps: int, kind="log", n_records: int = 20) -> np.ndarray:
    """Steps at which a run is recorded (SPEC §13).

    Parameters
    ----------
    total_steps : int
        The run's last step (≥ 1).
    kind : {"log", "linear"} or sequence of int
        ``"log"``: geometric spacing, dense early where predictions change fastest; ``"linear"``:
        even spacing; a sequence: exactly those steps. Step 0 and ``total_steps`` are always
        included for "log" and "linear".
    n_records : int
        Number of records wanted for "log" and "linear"; fewer are returned when steps coincide
        after rounding (see Notes).

    Returns
    -------
    ndarray of int64, shape (T,)
        Sorted, unique steps in ``[0, total_steps]``, ``T <= n_records``.

    Notes
    -----
    "log" places ``n_records - 1`` points geometrically from step 1 to ``total_steps`` (step 0
    comes first) and rounds them to whole steps. Where the ratio between neighbours is below
    about 1.5 (many records over few steps), neighbouring points round to the same step, which
    is recorded once: ``checkpoint_schedule(1000, "log", 30)`` spaces the points by a factor
    1000^(1/28) ≈ 1.28, so 1, 1.28, 1.64, 2.10, ... round to 1, 1, 2, 2, ... and 27 distinct
    steps remain. The schedule is not padded to ``n_records``: extra steps would have to be
    placed off the geometric spacing, and a study that resumes must see the schedule it
    started with. Ask for more records, or give the steps explicitly, to get more.

    Examples
    --------
    >>> len(checkpoint_schedule(1000, "log", 30))
    27
    >>> checkpoint_schedule(300, "log", 12).tolist()
    [0, 1, 2, 3, 6, 10, 17, 31, 54, 96, 170, 300]
    """
    total_steps = int(total_steps)
    if total_steps < 1:
        raise ValueError(f"`total_steps` must be ≥ 1, got {total_steps}")
    if isinstance(kind, str):
        if n_records < 2:
            raise ValueError(f"`n_records` must be ≥ 2, got {n_records}")
        if kind == "log":
            inner = np.geomspace(1, total_steps, n_records - 1)
        elif kind == "linear":
            inner = np.linspace(0, total_steps, n_records)
        else:
            raise ValueError(
                f"unknown schedule {kind!r}; choose 'log', 'linear' or a list of steps"
            )
        steps = np.concatenate([[0], np.round(inner), [total_steps]])
        return np.unique(steps.astype(np.int64))
    steps = np.asarray(kind)
    if steps.ndim != 1 or steps.size == 0 or steps.dtype.kind not in "iu":
        raise ValueError("an explicit schedule must be a non-empty list of integer steps")
    if steps.min() < 0 or steps.max() > total_steps:
        raise ValueError(
            f"schedule steps must lie in [0, {total_steps}], got range "
            f"[{steps.min()}, {steps.max()}]"
        )
    return np.unique(steps.astype(np.int64))


class Recorder:
    """Record a live PyTorch training loop into a :class:`taskspace.Store` (SPEC §11, §13).

    At each scheduled step the network's predictions on the probe set are computed — by imprinting
    its representation onto the whole label space (``mode="imprint"``) or from its own softmax
    (``mode="head"``) — and appended to the store at once, with probe accuracy and loss, the step,
    epoch and wall time. Inference runs under ``torch.no_grad()`` in eval mode, in batches, and the
    model's training mode is restored afterwards.

    Parameters
    ----------
    store : Store
        Open for appending; ``run_id`` must exist in it (``store.add_run``).
    run_id : str
        A new run, or one that already has records (``add_run(..., resume=True)`` when a script
        runs again): then only scheduled steps after its last recorded step are due, so that
        re-running never records a step twice (see :attr:`remaining`, :attr:`complete`).
    model : torch.nn.Module
    probe : (x, y)
        Probe inputs, already in the model's input format, and labels (N,) over the whole label
        space, in the store's probe order. ``x`` is a tensor or array with N rows, or a dict of
        them (for example a tokeniser's ``input_ids`` and ``attention_mask``), sliced together
        into batches.
    imprint : (x, y), optional
        Imprint-set inputs (as ``probe``) and labels over the whole label space (every class
        present). Required for ``mode="imprint"``.
    representation : callable ``(model, x) -> features``, optional
        How to get ``f(x)`` (``x`` one batch of inputs). Default: ``model.features(x)`` if the
        model has it, else the output of the module named by ``layer``.
    layer : str, optional
        Name of a submodule (``dict(model.named_modules())``) whose output is the representation,
        read with a forward hook.
    head : callable ``(model, x) -> logits``, optional
        How to get the logits over the whole label space in ``mode="head"``. Default
        ``model(x)``.
    mode : {"imprint", "head"}
    schedule : sequence of int
        Steps to record at (see :func:`checkpoint_schedule`).
    batch_size : int
        Inference batch size.
    progress : bool
        Print one line to standard error per record (step, records done of the schedule,
        probe accuracy and loss, time), and say at the start what a resumed run already holds.
    loggers : sequence of trackers
        Told of each record (``on_record``: progress, distances, length so far, probe metrics)
        and of the schedule's completion (``on_run_end``: the InPCA picture); see
        :mod:`taskspace.integrations.trackers` (TensorBoard, Weights & Biases).

    Examples
    --------
    >>> rec = Recorder(store, run_id, model=net, probe=(xp, yp), imprint=(xi, yi),
    ...                schedule=checkpoint_schedule(total_steps, "log", 30))  # doctest: +SKIP
    >>> for step in range(total_steps + 1):                                     # doctest: +SKIP
    ...     rec.maybe_record(step, epoch=step // steps_per_epoch)
    ...     if step < total_steps:
    ...         train_one_step(net)
    """

    def __init__(
        self,
        store,
        run_id,
        *,
        model,
        probe,
        imprint=None,
        representation=None,
        layer=None,
        head=None,
        mode="imprint",
        schedule=(),
        batch_size=512,
        progress=False,
        loggers=(),
    ):
        if mode not in ("imprint", "head"):
            raise ValueError(f"unknown mode {mode!r}; choose 'imprint' or 'head'")
        if mode == "imprint" and imprint is None:
            raise ValueError("mode='imprint' needs the imprint set: imprint=(x, y)")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size}")
        self.store, self.run_id, self.model, self.mode = store, run_id, model, mode
        self.n_classes = len(store.class_names)
        self.probe_x = _as_inputs("probe", probe[0])
        self.probe_y = np.asarray(probe[1], dtype=np.int64)
        if not np.array_equal(self.probe_y, np.asarray(store.labels)):
            raise ValueError(
                "the probe labels given to the Recorder differ from the store's probe "
                "labels: record on the store's probe set, in its order"
            )
        if _n_rows(self.probe_x) != len(self.probe_y):
            raise ValueError(
                f"the probe set has {_n_rows(self.probe_x)} inputs but {len(self.probe_y)} labels"
            )
        if imprint is not None:
            self.imprint_x = _as_inputs("imprint", imprint[0])
            self.imprint_y = np.asarray(imprint[1], dtype=np.int64)
            if _n_rows(self.imprint_x) != len(self.imprint_y):
                raise ValueError(
                    f"the imprint set has {_n_rows(self.imprint_x)} inputs but "
                    f"{len(self.imprint_y)} labels"
                )
        # head mode reads only the logits: no representation needed
        self.representation = (
            self._representation_fn(model, representation, layer) if mode == "imprint" else None
        )
        self.head = head if head is not None else (lambda m, x: m(x))
        self.schedule = set(int(s) for s in schedule)
        self.batch_size = int(batch_size)
        self.started = time.perf_counter()
        #: Seconds spent recording (the overhead on top of training).
        self.overhead_s = 0.0
        self.progress = bool(progress)
        self.loggers = list(loggers)
        for logger in self.loggers:
            if not callable(getattr(logger, "on_record", None)):
                raise TypeError(
                    f"a {type(logger).__name__} is not a tracker: wrap it with "
                    "taskspace.integrations.loggers.as_tracker"
                )
        #: The run's last recorded step (None: it has no record yet).
        steps = store.steps(run_id)
        self.last_step = steps[-1] if steps else None
        if self.progress and steps:
            _say(
                f"run {run_id}: {len(steps)} records already stored (last at step "
                f"{self.last_step}); "
                + (
                    "every scheduled step is recorded, nothing to do"
                    if self.complete
                    else f"{len(self.remaining)} scheduled steps left, from step "
                    f"{self.remaining[0]}"
                )
            )

    @property
    def remaining(self) -> list[int]:
        """Scheduled steps not yet recorded, in order (after the run's last recorded step)."""
        return sorted(s for s in self.schedule if self.last_step is None or s > self.last_step)

    @property
    def complete(self) -> bool:
        """Whether every scheduled step is recorded (a re-run can skip its training)."""
        return not self.remaining

    @staticmethod
    def _representation_fn(model, representation, layer):
        if representation is not None:
            return representation
        if layer is not None:
            modules = dict(model.named_modules())
            if layer not in modules:
                raise ValueError(
                    f"the model has no submodule {layer!r}; it has "
                    f"{', '.join(n for n in modules if n) or 'none'}"
                )
            return _HookedLayer(modules[layer])
        if callable(getattr(model, "features", None)):
            return lambda m, x: m.features(x)
        raise ValueError(
            "say how to get the representation: pass `representation=` or `layer=`, "
            "or give the model a `features(x)` method"
        )

    def due(self, step: int) -> bool:
        """Whether ``step`` is on the schedule and after the run's last recorded step."""
        step = int(step)
        return step in self.schedule and (self.last_step is None or step > self.last_step)

    def maybe_record(self, step: int, epoch: int | None = None, **metrics) -> bool:
        """Record if ``step`` is scheduled; returns whether it did."""
        if self.due(step):
            self.record(step, epoch=epoch, **metrics)
            return True
        return False

    def predict(self) -> np.ndarray:
        """The model's current predictions on the probe set, (N, C) float64."""
        import torch

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                if self.mode == "head":
                    logits = self._batched(lambda x: self.head(self.model, x), self.probe_x)
                    if logits.shape[1] != self.n_classes:
                        raise ValueError(
                            f"mode='head' needs a head over the whole label space: the model "
                            f"outputs {logits.shape[1]} logits for {self.n_classes} classes"
                        )
                    return np.exp(log_softmax(logits, axis=1))
                rep = self.representation
                probe_f = self._batched(lambda x: rep(self.model, x), self.probe_x)
                imprint_f = self._batched(lambda x: rep(self.model, x), self.imprint_x)
        finally:
            self.model.train(was_training)
        for name, feats in (("probe", probe_f), ("imprint", imprint_f)):
            if not np.all(np.isfinite(feats)):
                raise FloatingPointError(
                    f"the network's representation of the {name} set has non-finite values: "
                    "the network diverged or overflows (lower the learning rate, or check its "
                    "initialisation and input scale)"
                )
        protos = class_prototypes(
            imprint_f.reshape(len(imprint_f), -1), self.imprint_y, self.n_classes
        )
        return imprint(probe_f.reshape(len(probe_f), -1), protos)

    def record(self, step: int, epoch: int | None = None, **metrics) -> np.ndarray:
        """Compute the probe predictions now and append them to the store as one record.

        ``step`` must come after the run's last recorded step (a ValueError otherwise): a
        trajectory's steps increase, and a resumed run is never recorded twice at one step.
        """
        if self.last_step is not None and int(step) <= self.last_step:
            raise ValueError(
                f"run {self.run_id!r} already has a record at step {self.last_step}; "
                f"`step` {int(step)} must come after it (maybe_record skips the "
                "steps a resumed run already holds)"
            )
        t0 = time.perf_counter()
        P = self.predict()
        n = len(self.probe_y)
        accuracy = float(np.mean(P.argmax(1) == self.probe_y))
        loss = float(-np.mean(np.log(np.maximum(P[np.arange(n), self.probe_y], 1e-300))))
        record = {
            "accuracy": accuracy,
            "loss": loss,
            "epoch": -1 if epoch is None else int(epoch),
            "wall_time": time.perf_counter() - self.started,
            "mode": self.mode,
            **metrics,
        }
        self.store.append(
            self.run_id, P[None], steps=[int(step)], metrics={k: [v] for k, v in record.items()}
        )
        self.last_step = int(step)
        stored = P.astype(self.store.dtype)  # the loggers measure what the store holds
        for logger in self.loggers:
            logger.on_record(self.store, self.run_id, int(step), stored, record)
            if self.schedule and self.complete:
                logger.on_run_end(self.store, self.run_id, int(step))
        self.overhead_s += time.perf_counter() - t0
        if self.progress:
            done = len(self.schedule) - len(self.remaining)
            _say(
                f"recorded {self.run_id} step {int(step)} ({done}/{len(self.schedule)}): probe "
                f"accuracy {accuracy:.3f}, loss {loss:.3f}; {_clock(record['wall_time'])} "
                f"elapsed, {self.overhead_s:.1f} s of it recording"
            )
        return P

    def _batched(self, fn, x) -> np.ndarray:
        device = _module_device(self.model)
        outs = []
        for i in range(0, _n_rows(x), self.batch_size):
            out = fn(_to_device(_rows(x, i, i + self.batch_size), device))
            outs.append(out.detach().to("cpu", dtype=_torch_float64()).numpy())
        return np.concatenate(outs)


def _say(line: str) -> None:
    # Plain text to stderr: run ids and numbers are never read as markup, a pipe gets whole lines.
    print(line, file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    """``"1:02:03"`` or ``"2:03"``."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _HookedLayer:
    """Representation = output of one submodule, read with a forward hook during ``model(x)``."""

    def __init__(self, module):
        self.module = module

    def __call__(self, model, x):
        captured = []
        handle = self.module.register_forward_hook(lambda m, i, o: captured.append(o))
        try:
            model(x)
        finally:
            handle.remove()
        return captured[-1]


def _as_inputs(name: str, x):
    """A tensor, or a dict of tensors with the same number of rows (one input per sample)."""
    import torch

    if isinstance(x, Mapping):
        if not x:
            raise ValueError(f"the {name} inputs are an empty dict")
        out = {k: torch.as_tensor(v) for k, v in x.items()}
        rows = {k: len(v) for k, v in out.items()}
        if len(set(rows.values())) != 1:
            raise ValueError(f"the {name} inputs have different numbers of rows: {rows}")
        return out
    return torch.as_tensor(x)


def _n_rows(x) -> int:
    return len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)


def _rows(x, i: int, j: int):
    return {k: v[i:j] for k, v in x.items()} if isinstance(x, Mapping) else x[i:j]


def _to_device(x, device):
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, Mapping) else x.to(device)


def _module_device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:
        return "cpu"


def _torch_float64():
    import torch

    return torch.float64
