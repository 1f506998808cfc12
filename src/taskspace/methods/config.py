"""Validated training configurations, one class per method.

Every field is checked when the config is made: a wrong key, type or value raises ``ValueError``
naming the key and what it allows (``config key `optimizer`: got 'rmsprop'; allowed: 'sgd',
'adam', 'adamw'``). Types are strict (``"0.1"`` is not a learning rate, ``True`` is not a batch
size); integers are accepted where a float is expected. Configs are frozen and JSON-serialisable
(``config.model_dump(mode="json")``), which is what the store keeps with each run.

>>> make_config("supervised", {"lr": 0.1, "epochs": 3}).lr
0.1
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Epochs trained when a config gives neither ``epochs`` nor ``steps``.
DEFAULT_EPOCHS = 10.0

#: Fields that say where and how fast a run executes but not what it computes: they are left out
#: of a run's identity, so a run started on one machine can be resumed on another.
RUNTIME_FIELDS = frozenset(
    {"device", "mixed_precision", "record_batch_size", "keep_models", "checkpoint_interval_s"}
)


def _config_error(exc: ValidationError, cls: type) -> ValueError:
    """One readable clause per bad key, naming the key and what it allows."""
    by_key: dict[str, list[dict]] = {}
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else ""
        by_key.setdefault(key, []).append(err)
    clauses = []
    for key, errs in by_key.items():
        err = errs[0]
        msg = err["msg"].removeprefix("Value error, ")
        if not key:  # a rule about several keys
            clauses.append(msg)
        elif err["type"] == "extra_forbidden":
            clauses.append(
                f"unknown config key `{key}` for method {cls.method!r}; allowed "
                f"keys: {', '.join(sorted(cls.model_fields))}"
            )
        elif len(errs) > 1:  # a union: list what each branch takes
            allowed = [
                e["ctx"]["expected"] if e["type"] == "literal_error" else str(e["loc"][-1])
                for e in errs
                if len(e["loc"]) > 1
            ]
            clauses.append(
                f"config key `{key}`: got {err.get('input')!r}; allowed: {', or '.join(allowed)}"
            )
        elif err["type"] == "literal_error":
            clauses.append(
                f"config key `{key}`: got {err.get('input')!r}; allowed: {err['ctx']['expected']}"
            )
        else:
            clauses.append(f"config key `{key}`: {msg} (got {err.get('input')!r})")
    return ValueError("invalid training config: " + "; ".join(clauses))


class TrainConfig(BaseModel):
    """Options shared by every method.

    Attributes
    ----------
    optimizer : {"sgd", "adam", "adamw"}
        SGD with momentum (and optional Nesterov), Adam (``weight_decay`` as an L2 term) or AdamW
        (decoupled weight decay).
    lr : float > 0
        Peak learning rate.
    momentum : float in [0, 1)
        SGD momentum (ignored by Adam/AdamW).
    nesterov : bool
    weight_decay : float ≥ 0
    lr_schedule : {"constant", "cosine", "step"}
        After ``warmup_steps`` of linear warm-up from ``lr / warmup_steps``: constant; cosine decay
        to 0 at the last step; or multiplied by ``lr_gamma`` every ``lr_step_every`` steps
        (default: a third of the run).
    warmup_steps : int ≥ 0
    lr_step_every : int ≥ 1 or None
    lr_gamma : float in (0, 1]
    epochs : float > 0 or None
        Length of the run in passes over the method's data (see each method for what one pass
        is). Give ``epochs`` or ``steps``, not both; neither means ``DEFAULT_EPOCHS``.
    steps : int ≥ 1 or None
        Length of the run in optimisation steps.
    seed : int ≥ 0
        Seeds the initial weights and every random draw of the run (data order, augmentations,
        episodes).
    device : {"auto", "cpu", "cuda"}
        ``"auto"``: CUDA when available, else the CPU.
    mixed_precision : {"auto", "off", "bf16", "fp16"}
        ``torch.autocast`` for forward passes. ``"auto"``: bf16 on a GPU that supports it, off on
        the CPU. ``"bf16"`` also on the CPU (fast where the CPU has bf16 instructions, e.g.
        ``avx512_bf16`` or AMX; it changes the trajectory, not only its rounding:
        docs/decisions.md). ``"fp16"`` with ``device="cpu"`` is an error; with ``device="auto"``
        on a machine without a GPU it falls back to full precision.
    record_schedule : {"log", "linear"} or list of int
        When the run is recorded (SPEC §13, `taskspace.record.checkpoint_schedule`).
    n_records : int ≥ 2
        Records of a "log" or "linear" schedule.
    record_mode : {"imprint", "head"}
        Imprint the representation onto the whole label space (SPEC §11), or record the network's
        own softmax (only for a head over the whole label space).
    record_batch_size : int ≥ 1
        Inference batch size when recording.
    keep_models : {"records", "last", "none"}
        Which model weights to keep beside the store: at every record step (what fine-tuning
        from an intermediate step needs), only at the last step, or none.
    checkpoint_interval_s : float ≥ 0
        Also save the resume state when this much time passed since the last save (0: only at
        records).
    network_options : dict
        Extra keyword arguments of the network builder (``{"width": 16}`` for the small CNN).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)
    method: ClassVar[str] = "base"

    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0)
    lr_schedule: Literal["constant", "cosine", "step"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    lr_step_every: int | None = Field(None, ge=1)
    lr_gamma: float = Field(0.1, gt=0, le=1)
    epochs: float | None = Field(None, gt=0)
    steps: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: Literal["auto", "off", "bf16", "fp16"] = "auto"
    record_schedule: Literal["log", "linear"] | list[int] = "log"
    n_records: int = Field(20, ge=2)
    record_mode: Literal["imprint", "head"] = "imprint"
    record_batch_size: int = Field(256, ge=1)
    keep_models: Literal["records", "last", "none"] = "records"
    checkpoint_interval_s: float = Field(300.0, ge=0)
    network_options: dict[str, int | float | str | bool] = Field(default_factory=dict)

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc, type(self)) from None

    @field_validator("lr", "weight_decay", "epochs", "checkpoint_interval_s")
    @classmethod
    def _finite(cls, v):
        if v is not None and not math.isfinite(v):
            raise ValueError("must be finite")
        return v

    @field_validator("record_schedule")
    @classmethod
    def _explicit_schedule(cls, v):
        if isinstance(v, list) and (not v or min(v) < 0):
            raise ValueError("an explicit schedule must be a non-empty list of steps ≥ 0")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give `epochs` or `steps`, not both")
        if self.device == "cpu" and self.mixed_precision == "fp16":
            raise ValueError(
                "mixed_precision='fp16' needs a GPU but device='cpu'; use 'bf16', 'off' or 'auto'"
            )
        if self.record_mode == "head" and not self.has_head:
            raise ValueError(
                f"record_mode='head' needs a trained classification head; method "
                f"{self.method!r} has none (use record_mode='imprint')"
            )
        return self

    has_head: ClassVar[bool] = True

    def total_steps(self, steps_per_epoch: int) -> int:
        """Length of the run in optimisation steps."""
        if self.steps is not None:
            return self.steps
        epochs = DEFAULT_EPOCHS if self.epochs is None else self.epochs
        return max(1, math.ceil(epochs * steps_per_epoch))

    def identity(self) -> dict:
        """The fields that determine what the run computes (everything but `RUNTIME_FIELDS`)."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in RUNTIME_FIELDS}


class SupervisedConfig(TrainConfig):
    """Supervised learning: cross-entropy on the task's classes.

    Attributes
    ----------
    batch_size : int ≥ 1
    augment : bool
        Weak augmentation of each batch (flip and crop, `taskspace.methods.augment`).
    """

    method: ClassVar[str] = "supervised"
    batch_size: int = Field(128, ge=1)
    augment: bool = False


class FinetuneConfig(SupervisedConfig):
    """Fine-tuning from another run's model (its parent and step are arguments of `train_run`).

    Attributes
    ----------
    head_only : bool
        Train only the new head (the body is frozen, batch-norm statistics included).
    """

    method: ClassVar[str] = "finetune"
    lr: float = Field(0.01, gt=0)
    head_only: bool = False


class ProtoNetConfig(TrainConfig):
    """Prototypical Networks: one optimisation step per N-way K-shot episode with Q queries.

    Attributes
    ----------
    n_way : int ≥ 2 or None
        Classes per episode (None: every class of the task).
    k_shot : int ≥ 1
        Support samples per class.
    n_query : int ≥ 1
        Query samples per class.
    augment : bool
        Weak augmentation of the episode's images.
    """

    method: ClassVar[str] = "protonet"
    has_head: ClassVar[bool] = False
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    n_way: int | None = Field(None, ge=2)
    k_shot: int = Field(5, ge=1)
    n_query: int = Field(15, ge=1)
    augment: bool = False


class SimCLRConfig(TrainConfig):
    """SimCLR: NT-Xent between two augmented views through a projection head.

    Attributes
    ----------
    batch_size : int ≥ 2
        Images per step (2 × batch_size views).
    temperature : float > 0
    projection_dim : int ≥ 1
        Output of the projection MLP.
    projection_hidden : int ≥ 1 or None
        Its hidden width (None: the network's feature dimension).
    """

    method: ClassVar[str] = "simclr"
    has_head: ClassVar[bool] = False
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    batch_size: int = Field(256, ge=2)
    temperature: float = Field(0.5, gt=0)
    projection_dim: int = Field(64, ge=1)
    projection_hidden: int | None = Field(None, ge=1)


class FixMatchConfig(TrainConfig):
    """FixMatch: a few labels per class, the rest of the task's data unlabelled.

    Attributes
    ----------
    batch_size : int ≥ 1
        Labelled images per step; ``mu * batch_size`` unlabelled ones go with them.
    labels_per_class : int ≥ 1
        Labelled training samples of each class of the task.
    threshold : float in (0, 1]
        Confidence above which a weak view's prediction becomes a pseudo-label.
    mu : int ≥ 1
        Ratio of unlabelled to labelled batch size.
    lambda_u : float ≥ 0
        Weight of the unlabelled loss.
    """

    method: ClassVar[str] = "fixmatch"
    lr: float = Field(0.03, gt=0)
    nesterov: bool = True
    batch_size: int = Field(64, ge=1)
    labels_per_class: int = Field(10, ge=1)
    threshold: float = Field(0.95, gt=0, le=1)
    mu: int = Field(7, ge=1)
    lambda_u: float = Field(1.0, ge=0)


#: method name → its config class.
CONFIGS: dict[str, type[TrainConfig]] = {
    cls.method: cls
    for cls in (SupervisedConfig, FinetuneConfig, ProtoNetConfig, SimCLRConfig, FixMatchConfig)
}


def make_config(method: str, config=None) -> TrainConfig:
    """The validated config of ``method`` from a dict (or a config, checked to fit).

    Parameters
    ----------
    method : {"supervised", "finetune", "protonet", "simclr", "fixmatch"}
    config : dict, TrainConfig or None
        None: every default.

    Returns
    -------
    TrainConfig
        An instance of ``CONFIGS[method]``.
    """
    if method not in CONFIGS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(CONFIGS)}")
    cls = CONFIGS[method]
    if config is None:
        return cls()
    if isinstance(config, TrainConfig):
        if type(config) is not cls:
            raise ValueError(
                f"method {method!r} takes a {cls.__name__} (or a dict), got a "
                f"{type(config).__name__}"
            )
        return config
    if not isinstance(config, dict):
        raise ValueError(f"`config` must be a dict or a TrainConfig, got {type(config).__name__}")
    bad = [k for k in config if not isinstance(k, str)]
    if bad:
        raise ValueError(f"config keys must be strings, got {bad!r}")
    return cls(**config)
