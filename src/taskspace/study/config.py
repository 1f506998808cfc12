"""Study configs: a validated description of the experiments of a study, read from TOML.

A study names its data and splits (``[data]``), its tasks (``[tasks.<name>]``: a class list, a
hierarchy node, or ``k`` classes drawn with a seed), its runs (``[runs.<name>]``: a method on some
tasks with some seeds, a network and the method's hyper-parameters, and for ``finetune`` the run
spec it starts from and the pre-training steps), the record schedule (``[schedule]``), the
analyses (``[analyses]``) and the overrides of ``--quick`` (``[quick]``, a partial study merged
over the rest; its ``all_runs`` table is merged into every run).

Every problem raises one ``ValueError`` naming the key by its dotted path and what it allows::

    study key `runs.sup.method`: got 'sgd'; allowed: 'supervised', 'finetune', ...

This module is the schema only; `taskspace.study.loading` reads and cross-checks a study
(`load_study`, `parse_study`) and `taskspace.study.plan` expands it into runs.

>>> study = load_study("studies/digits-demo.toml")                   # doctest: +SKIP
>>> [r.key for r in expand_runs(study)][:2]                          # doctest: +SKIP
"""

from __future__ import annotations

import re
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from taskspace.methods.registry import METHODS

Size = int | float | None

#: Config keys a study sets for every run from ``[schedule]``; a run's own config wins.
SCHEDULE_KEYS = ("record_schedule", "n_records")
#: Study names become folder names (the default output folder is ./<name>).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DataSpec(_Strict):
    """``[data]``: the dataset and its deterministic split (`taskspace.data.make_splits`).

    ``dataset`` is a name of `taskspace.data.load_dataset`; ``root`` its folder (default: the
    usual search path); ``options`` go to the loader (ImageFolder's ``size``, ``max_per_class``);
    ``hierarchy`` names the shipped class hierarchy of the label space (default: the dataset's,
    ``"imagenet1k"`` for ``imagefolder``; ``"none"``: no hierarchy, no node tasks), or declares
    one as a table ``node = [children...]`` (nodes or class names; `ClassHierarchy.from_tree`):
    a hand-made tree, not WordNet, such as the demonstration hierarchy of the digits study.
    """

    dataset: str
    root: str | None = None
    options: dict[str, int | float | str | bool | list[str]] = Field(default_factory=dict)
    hierarchy: str | dict[str, list[str]] | None = None
    n_train: Size = None
    n_imprint: int | float = 0.1
    n_probe: Size = None
    seed: int = Field(0, ge=0)
    stratified: bool = True

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        # Checked with the config, so that a typo fails before anything is created on disk.
        from taskspace.data.dataset import dataset_key

        dataset_key(value)
        return value


class TaskSpec(_Strict):
    """``[tasks.<name>]``: exactly one of ``classes`` (names or indices, or ``"all"``), ``node``
    (a hierarchy node: synset name or wnid), or ``k`` (that many classes drawn with ``seed``)."""

    classes: list[str | int] | Literal["all"] | None = None
    node: str | None = None
    k: int | None = Field(None, ge=2)
    seed: int | None = Field(None, ge=0)


class RunSpec(_Strict):
    """``[runs.<name>]``: one run per (task, seed[, parent task, parent step]).

    ``config`` is the method's config (`taskspace.methods.config`) without ``seed``. A
    ``finetune`` spec names its ``parent`` spec; each of its runs starts from the parent's run with
    the same seed on ``parent_task`` (default: each of the parent's tasks) at each of
    ``parent_steps`` (record steps of the parent; ``-1``: its last record; default ``[-1]``).
    """

    method: Literal[tuple(METHODS)]  # type: ignore[valid-type]
    tasks: list[str] = Field(min_length=1)
    seeds: list[int] = Field([0], min_length=1)
    network: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    parent: str | None = None
    parent_task: str | None = None
    parent_steps: list[int] | None = None


class ScheduleSpec(_Strict):
    """``[schedule]``: when every run is recorded (SPEC §13), unless its config says otherwise."""

    record_schedule: Literal["log", "linear"] | list[int] = "log"
    n_records: int = Field(20, ge=2)


class AnalysesSpec(_Strict):
    """``[analyses]``: which analyses to run (default all) and options per analysis.

    ``[analyses.options.<name>]`` holds keyword arguments of that analysis, for example
    ``[analyses.options.low_dimension] weighting = "run"``: weighted InPCA in which every run
    counts once, its records sharing a weight of ``1/(runs × records)`` (default ``"model"``:
    every model counts once).
    """

    names: list[str] | None = None
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _known_weighting(cls, options: dict) -> dict:
        # Checked with the config, so that a typo fails before any run is trained.
        from taskspace.study.analyses.low_dimension import WEIGHTINGS

        weighting = options.get("low_dimension", {}).get("weighting", "model")
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"`low_dimension.weighting` must be one of "
                f"{', '.join(map(repr, WEIGHTINGS))}, got {weighting!r}"
            )
        return options


class StudyConfig(_Strict):
    """A validated study (see the module docstring). Build it with `load_study`/`parse_study`.

    Attributes
    ----------
    source : str
        The TOML text it was read from (for the report); ``quick`` says whether the ``[quick]``
        overrides were applied.
    """

    name: str = Field(min_length=1)
    description: str = ""
    data: DataSpec
    tasks: dict[str, TaskSpec] = Field(min_length=1)
    runs: dict[str, RunSpec] = Field(min_length=1)
    schedule: ScheduleSpec = ScheduleSpec()
    analyses: AnalysesSpec = AnalysesSpec()
    source: str = ""
    quick: bool = False

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        # The default output folder is ./<name>: '/', '..' or a leading '-' would put the store
        # elsewhere (or read as an option), so a study name must be a plain folder name.
        if not SAFE_NAME.match(name):
            raise ValueError(
                f"{name!r} is not a safe folder name: use 1-128 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        return name


# ----------------------------------------------------------------------------------- errors
def _model_at(loc) -> type[BaseModel] | None:
    """The model class that validates the value at ``loc`` (to list its allowed keys)."""
    model: Any = StudyConfig
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return None
            model = field.annotation
        elif typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]
        else:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _dotted(loc) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith(("function-", "literal[")))


def pydantic_error(exc: ValidationError) -> ValueError:
    clauses = []
    union: dict[str, tuple[list[str], object, int]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        # A union reports one error per branch; keep the branch-free location.
        loc = tuple(
            p
            for p in loc
            if not (
                isinstance(p, str) and ("[" in p or p in ("int", "float", "str", "list", "none"))
            )
        )
        key = _dotted(loc)
        if err["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else "?"
            if parent is StudyConfig:
                allowed = ", ".join(k for k in parent.model_fields if k not in ("source", "quick"))
                allowed += ", quick"
            clauses.append(f"unknown study key `{key}`; allowed keys here: {allowed}")
        elif err["type"] == "literal_error":
            clauses.append(
                f"study key `{key}`: got {err.get('input')!r}; allowed: {err['ctx']['expected']}"
            )
        elif err["type"] == "missing":
            clauses.append(f"study key `{key}` is required")
        elif err["type"] in _EXPECTED and key in union:
            # A union (int | float | None) fails once per branch: one clause naming them all.
            union[key][0].append(_EXPECTED[err["type"]])
        elif err["type"] in _EXPECTED:
            union[key] = ([_EXPECTED[err["type"]]], err.get("input"), len(clauses))
            clauses.append(None)  # filled in below, where the first branch failed
        else:
            msg = err["msg"].removeprefix("Value error, ")
            clauses.append(f"study key `{key}`: {msg} (got {err.get('input')!r})")
    for key, (expected, value, at) in union.items():
        kinds = list(dict.fromkeys(expected))
        kinds = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
        clauses[at] = f"study key `{key}`: expected {kinds} (got {value!r})"
    unique = list(dict.fromkeys(clauses))
    return ValueError("invalid study config: " + "; ".join(unique[:6]))


#: What a type error of pydantic's strict mode expected, in words.
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "none_required": "nothing",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}


def study_error(key: str, message: str) -> ValueError:
    """The error for a study key: ``study key `<key>`: <message>``."""
    return ValueError(f"invalid study config: study key `{key}`: {message}")


def run_config(study: StudyConfig, spec: RunSpec, seed: int) -> dict:
    """The method config of one run: ``[schedule]``, then the spec's config, then the seed."""
    cfg = {k: getattr(study.schedule, k) for k in SCHEDULE_KEYS}
    cfg.update(spec.config)
    cfg["seed"] = seed
    return cfg
