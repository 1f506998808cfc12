"""`train_run`: the one training loop every method shares — recorded, checkpointed, resumable.

Design of resuming (details in `taskspace.methods._checkpoint` and `taskspace.methods._data`):

- A run's id is a hash of what it computes (task, method, network, config without the runtime
  fields, parent, split), so calling `train_run` again with the same arguments finds the same run.
- Every random draw at step ``t`` comes from a generator seeded by ``(seed, purpose, t)``, so the
  draws do not depend on the path to ``t``; the model's initial weights come from a seeded fork of
  torch's CPU generator. The resume state therefore only needs the model, optimiser, scheduler,
  grad scaler, the running training metrics and the step (torch's global RNG states are saved and
  restored too, for code that draws from them).
- At a record step ``s`` the loop saves the model (``model-<s>.pt``), appends the record to the
  store, then saves the resume state (``state.pt``); it also saves the state every
  ``checkpoint_interval_s``. A run killed between the append and the state save replays to ``s``
  from its previous state and skips appending what the store already holds (records are looked
  up by step), so no record is duplicated and none is lost.
- A run whose records are complete returns at once. ``state.pt`` is deleted when a run finishes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from taskspace.methods import _checkpoint
from taskspace.methods._data import derive_seed, float_tensor
from taskspace.methods.base import make_optimizer, make_scheduler
from taskspace.methods.config import make_config
from taskspace.record import Recorder, checkpoint_schedule
from taskspace.ui.progress import TrainingProgress

_STATE_FORMAT = 1


class RunLockedError(RuntimeError):
    """The run is being trained by another process (its checkpoint folder's lock is held)."""


def train_run(
    store,
    split,
    task,
    method: str = "supervised",
    network: str | None = None,
    config=None,
    *,
    run_id: str | None = None,
    parent: str | None = None,
    parent_step: int | None = None,
    checkpoint_dir=None,
    progress: bool = True,
    on_step=None,
) -> str:
    """Train one run of ``method`` on ``task`` and record it into ``store``; resume if started.

    Parameters
    ----------
    store : Store or path
        The store to record into (opened for appending); its probe set and label space must be
        the split's.
    split : taskspace.data.Split
        Training data (``split.train()``, restricted to the task's classes), imprint set and
        probe set.
    task : taskspace.tasks.Task
        The classes to train on, as indices of the split's label space.
    method : {"supervised", "finetune", "protonet", "simclr", "fixmatch"}
    network : str, optional
        A name of `taskspace.nets.NETWORKS`. Default: the parent's network for "finetune",
        ``"mlp"`` for 8×8 images, ``"small-cnn"`` otherwise.
    config : dict or TrainConfig, optional
        The method's config (`taskspace.methods.config`); None: defaults.
    run_id : str, optional
        Default: ``"<task>-<method>-seed<seed>-<hash>"``, the hash covering everything the run
        computes, so the same call finds the same run again.
    parent, parent_step : optional
        For "finetune": the run (in ``store``) and its record step to start from (default: its
        last record).
    checkpoint_dir : path, optional
        Folder of the runs' checkpoints (default ``<store>.checkpoints``); a fine-tuning parent's
        models are looked up there too.
    progress : bool
        Show a progress bar with loss, accuracy and the time left.
    on_step : callable, optional
        Called as ``on_step(run_id, step, total, recorded)`` when training starts (or resumes)
        at ``step``, after every optimiser step, and after each record (``recorded=True``: the
        record of ``step`` is in the store and its model file saved). Not called for a run that
        is already complete. For progress views of many runs (`taskspace.study.distributed_runner`);
        it must be cheap, it runs in the training loop.

    Returns
    -------
    str
        The run id. Calling again with the same arguments continues an interrupted run from its
        last checkpoint and does nothing for a finished one.
    """
    from taskspace.methods.registry import get_method
    from taskspace.nets import NETWORKS
    from taskspace.store import Store

    cfg = make_config(method, config)
    if not isinstance(store, Store):
        store = Store.open(store, mode="a")
    _check_data(store, split, task)
    device, amp_dtype = resolve_device(cfg.device, cfg.mixed_precision)
    root = Path(checkpoint_dir) if checkpoint_dir is not None else _checkpoint.default_root(store)

    m = get_method(method)(cfg, task, split, device)
    if m.needs_parent:
        parent, parent_step = m.attach_parent(store, root, parent, parent_step)
        if network is not None and network != m.parent_network:
            raise ValueError(
                f"network={network!r} differs from the fine-tuning parent's network "
                f"{m.parent_network!r}; leave it out or give the parent's"
            )
        network = m.parent_network
    elif parent is not None or parent_step is not None:
        raise ValueError(
            f"method {method!r} does not start from a parent run; only 'finetune' "
            "takes `parent` and `parent_step`"
        )
    if network is None:
        network = "mlp" if m.x.image_size <= 8 else "small-cnn"
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}")
    n_classes = len(split.class_names)
    if cfg.record_mode == "head" and m.n_outputs() != n_classes:
        raise ValueError(
            f"record_mode='head' needs a head over the whole label space ({n_classes} "
            f"classes) but task {task.name!r} has {len(task)}; use 'imprint'"
        )

    steps_per_epoch = m.steps_per_epoch()
    total = cfg.total_steps(steps_per_epoch)
    if isinstance(cfg.record_schedule, list) and max(cfg.record_schedule) > total:
        raise ValueError(
            f"config key `record_schedule`: step {max(cfg.record_schedule)} is past "
            f"the run's last step {total}"
        )
    schedule = [int(s) for s in checkpoint_schedule(total, cfg.record_schedule, cfg.n_records)]

    identity = {
        "method": method,
        "task": task.to_dict(),
        "network": network,
        "config": cfg.identity(),
        "parent_run": parent,
        "parent_step": parent_step,
        "split": split.metadata(),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    if run_id is None:
        stem = "".join(
            ch if ch.isalnum() or ch in "._-" else "_"
            for ch in f"{task.name}-{method}-seed{cfg.seed}"
        )[:100].lstrip("._-")
        run_id = f"{stem}-{digest[:10]}"
    ckpt = _checkpoint.RunCheckpoints(root, run_id)

    with ckpt.lock() as locked:
        if not locked:
            raise RunLockedError(
                f"run {run_id!r} is being trained by another process (its lock "
                f"{ckpt.dir / 'lock'} is held)"
            )
        if run_id in store.run_ids:
            _check_same_run(store, run_id, digest, identity)
        else:
            store.add_run(
                run_id,
                task=task.name,
                classes=list(task.classes),
                method=method,
                seed=cfg.seed,
                network=network,
                dataset=split.metadata(),
                parent_run=parent,
                parent_step=parent_step,
                config={**cfg.model_dump(mode="json"), "identity": digest},
                probe_hash=split.probe_hash,
                label_space_hash=split.label_space_hash,
            )
        done = store.steps(run_id)
        if done != schedule[: len(done)]:
            raise ValueError(
                f"run {run_id!r} has records at steps {done}, which are not the "
                f"start of its schedule {schedule}"
            )
        if len(done) == len(schedule):
            ckpt.remove_state()
            return run_id

        loop = _Loop(
            m,
            cfg,
            store,
            split,
            run_id,
            network,
            ckpt,
            digest,
            device,
            amp_dtype,
            total,
            schedule,
            steps_per_epoch,
            set(done),
        )
        loop.run(progress, on_step)
    return run_id


def resolve_device(device: str, mixed_precision: str) -> tuple[torch.device, torch.dtype | None]:
    """The training device and the autocast dtype (None: full precision)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' but no CUDA device is available; use device='auto' or 'cpu'"
        )
    dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    if mixed_precision == "off":
        return dev, None
    if dev.type == "cpu":
        # bf16 autocast on the CPU only when asked for: it trains 1.3-1.6x faster where the CPU
        # has bf16 instructions but moves the trajectory (docs/decisions.md), so "auto" stays
        # float32. fp16 on the CPU was refused by the config (no GradScaler there).
        return dev, (torch.bfloat16 if mixed_precision == "bf16" else None)
    if mixed_precision == "fp16":
        return dev, torch.float16
    if mixed_precision == "bf16" or torch.cuda.is_bf16_supported():
        return dev, torch.bfloat16
    return dev, None


def _check_data(store, split, task) -> None:
    if split.probe_hash != store.probe_hash or split.label_space_hash != store.label_space_hash:
        raise ValueError(
            f"the split's probe set / label space (hashes {split.probe_hash[:12]} / "
            f"{split.label_space_hash[:12]}) are not the store's ({store.probe_hash[:12]} / "
            f"{store.label_space_hash[:12]})"
        )
    names = split.class_names
    bad = [
        (c, n)
        for c, n in zip(task.classes, task.class_names, strict=True)
        if c >= len(names) or names[c] != n
    ]
    if bad:
        raise ValueError(
            f"task {task.name!r} does not fit the split's label space: class(es) "
            f"{bad} are not (index, name) pairs of {names}"
        )


def _check_same_run(store, run_id: str, digest: str, identity: dict) -> None:
    info = store.run_info(run_id)
    stored = info.get("config") or {}
    if stored.get("identity") == digest:
        return
    differ = [
        k
        for k, v in (
            ("method", identity["method"]),
            ("network", identity["network"]),
            ("parent_run", identity["parent_run"]),
            ("parent_step", identity["parent_step"]),
        )
        if info.get(k) != v
    ]
    if (
        info.get("classes") != list(identity["task"]["classes"])
        and info.get("classes") != identity["task"]["class_names"]
    ):
        differ.append("task classes")
    differ += [f"config.{k}" for k, v in identity["config"].items() if stored.get(k) != v]
    raise ValueError(
        f"run {run_id!r} already exists in store {store.path} with a different "
        f"setup ({', '.join(differ) or 'data split'} differ); choose another run_id"
    )


def _no_report(run_id, step, total, recorded):
    return None


class _Meter:
    """Running sums of the loss and the method's statistics since the last record (on device)."""

    def __init__(self, names, device):
        self.names = ("loss", *names)
        self.device = device
        self.reset()

    def reset(self):
        self.sums = torch.zeros(len(self.names), dtype=torch.float64, device=self.device)
        self.count = 0

    def add(self, loss, stats):
        values = torch.stack([loss.detach().double(), *(stats[n].double() for n in self.names[1:])])
        self.sums += values
        self.count += 1

    def means(self) -> dict[str, float]:
        if self.count == 0:
            return {f"train_{n}": math.nan for n in self.names}
        values = (self.sums / self.count).tolist()
        return {f"train_{n}": v for n, v in zip(self.names, values, strict=True)}

    def state_dict(self):
        return {"sums": self.sums.cpu(), "count": self.count}

    def load_state_dict(self, state):
        self.sums = state["sums"].to(self.device)
        self.count = int(state["count"])


class _Loop:
    """The state of one run being trained (built fresh or from its checkpoint)."""

    def __init__(
        self,
        method,
        cfg,
        store,
        split,
        run_id,
        network,
        ckpt,
        digest,
        device,
        amp_dtype,
        total,
        schedule,
        steps_per_epoch,
        done,
    ):
        from taskspace.nets import build_network

        self.m, self.cfg, self.ckpt, self.digest = method, cfg, ckpt, digest
        self.device, self.amp_dtype, self.total = device, amp_dtype, total
        self.schedule, self.steps_per_epoch, self.done = schedule, steps_per_epoch, done
        self.run_id = run_id
        x = method.x

        def build(n_outputs, name=None, options=None):
            name = name or network
            options = cfg.network_options if options is None else options
            self.net_spec = {
                "network_name": name,
                "network_options": dict(options),
                "n_outputs": int(n_outputs),
                "in_channels": x.in_channels,
                "image_size": x.image_size,
            }
            return build_network(
                name, n_outputs, in_channels=x.in_channels, image_size=x.image_size, **options
            )

        # Initial weights from a seeded fork of the CPU generator: the same on every device, and
        # the caller's global RNG is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(cfg.seed, "init", 0))
            self.net = method.init_network(build)
            self.extra = method.build_extra(self.net)
        self.net_spec["n_outputs"] = int(self.net.head.out_features)
        self.net.to(device)
        if any(isinstance(mod, torch.nn.Conv2d) for mod in self.net.modules()):
            # NHWC convolutions (oneDNN on the CPU, tensor cores on the GPU): 1.3-1.6x faster
            # training and 1.8x faster recording for the small CNN on 2 CPU cores.
            self.net.to(memory_format=torch.channels_last)
        if self.extra is not None:
            self.extra.to(device)
        self.opt = make_optimizer(cfg, method.parameters(self.net, self.extra))
        self.sched = make_scheduler(cfg, self.opt, total)
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        self.meter = _Meter(method.stats, device)
        self.start, elapsed = 0, 0.0
        state = ckpt.load_state()
        if state is not None:
            self.start, elapsed = self._load(state)
        elif done:
            warnings.warn(
                f"run {run_id!r} has {len(done)} records but no resume state in "
                f"{ckpt.dir}; training again from step 0 (records already stored are "
                "kept)",
                stacklevel=3,
            )
        probe, imp = split.probe(), split.imprint()
        self.recorder = Recorder(
            store,
            run_id,
            model=self.net,
            probe=(float_tensor(probe), probe.labels),
            imprint=(float_tensor(imp), imp.labels) if cfg.record_mode == "imprint" else None,
            mode=cfg.record_mode,
            schedule=schedule,
            batch_size=cfg.record_batch_size,
        )
        # wall_time in the records continues across interruptions
        self.recorder.started = time.perf_counter() - elapsed

    # ------------------------------------------------------------------ checkpoints
    def _state(self, step: int) -> dict:
        return {
            "format": _STATE_FORMAT,
            "identity": self.digest,
            "step": int(step),
            "network": self.net.state_dict(),
            "extra": self.extra.state_dict() if self.extra is not None else {},
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "meter": self.meter.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "elapsed_s": time.perf_counter() - self.recorder.started,
        }

    def _load(self, state: dict) -> tuple[int, float]:
        if state.get("format") != _STATE_FORMAT or state.get("identity") != self.digest:
            raise ValueError(
                f"the resume state {self.ckpt.state_path} belongs to another setup "
                "of this run id; delete it to start the run again"
            )
        self.net.load_state_dict(state["network"])
        if self.extra is not None:
            self.extra.load_state_dict(state["extra"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.meter.load_state_dict(state["meter"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        return int(state["step"]), float(state["elapsed_s"])

    def _save_model(self, step: int) -> None:
        payload = {
            **self.net_spec,
            "step": int(step),
            "run_id": self.run_id,
            "network": self.net.state_dict(),
            "extra": self.extra.state_dict() if self.extra is not None else {},
        }
        self.ckpt.save_model(step, payload, self.cfg.keep_models)

    # ------------------------------------------------------------------ the loop
    def run(self, show_progress: bool, on_step=None) -> None:
        cfg, m = self.cfg, self.m
        report = on_step or _no_report
        report(self.run_id, self.start, self.total, False)
        scheduled = set(self.schedule)
        last_save = time.monotonic()
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with TrainingProgress(
            f"{m.name} · {m.task.name}", self.total, self.start, enabled=show_progress
        ) as bar:
            for step in range(self.start, self.total + 1):
                if step in scheduled:
                    self._record(step, bar)
                    last_save = time.monotonic()
                    report(self.run_id, step, self.total, True)
                elif (
                    cfg.checkpoint_interval_s
                    and time.monotonic() - last_save > cfg.checkpoint_interval_s
                ):
                    self.ckpt.save_state(self._state(step))
                    last_save = time.monotonic()
                if step == self.total:
                    break
                m.train_mode(self.net, self.extra)
                with autocast:
                    loss, stats = m.loss(self.net, self.extra, step)
                self.opt.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    self.scaler.step(self.opt)
                    self.scaler.update()
                else:
                    loss.backward()
                    self.opt.step()
                self.sched.step()
                self.meter.add(loss, stats)
                report(self.run_id, step + 1, self.total, False)
                if bar.due(step + 1):
                    bar.update(step + 1, self._checked_means(step + 1))
        self.ckpt.remove_state()

    def _checked_means(self, step: int) -> dict[str, float]:
        means = self.meter.means()
        if self.meter.count and not math.isfinite(means["train_loss"]):
            raise RuntimeError(
                f"training diverged: the loss is {means['train_loss']} before step "
                f"{step} of run {self.run_id!r}; lower the learning rate "
                f"(lr={self.cfg.lr})"
            )
        return means

    def _record(self, step: int, bar) -> None:
        means = self._checked_means(step)
        if step not in self.done:
            self._save_model(step)
            lr = self.sched.get_last_lr()[0]
            P = self.recorder.record(step, epoch=step // self.steps_per_epoch, **means, lr=lr)
            bar.probe_accuracy = float(np.mean(P.argmax(1) == self.recorder.probe_y))
            self.done.add(step)
        elif self.cfg.keep_models != "none" and not self.ckpt.model_path(step).is_file():
            self._save_model(step)
        self.meter.reset()
        bar.update(step, means)
        self.ckpt.save_state(self._state(step))
