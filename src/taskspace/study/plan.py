"""From a validated study to concrete runs: cross-checks, tasks, and the order to train them in."""

from __future__ import annotations

from dataclasses import dataclass, field

from taskspace.data.dataset import dataset_key
from taskspace.methods.config import make_config
from taskspace.study.config import SAFE_NAME, RunSpec, StudyConfig, run_config, study_error
from taskspace.tasks import Task

#: Datasets whose class names are known without reading their files.
_DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class PlannedRun:
    """One run of a study.

    Attributes
    ----------
    key : str
        ``"<spec>/<task>/seed<seed>"`` (+ ``"/from-<parent task>@<step>"`` for fine-tuning);
        unique within the study.
    spec, task, method : str
    seed : int
    network : str or None
    config : dict
        The method config (schedule, hyper-parameters, seed).
    parent : str or None
        Key of the run it fine-tunes from; ``parent_step`` its record step (None: the last).
    """

    key: str
    spec: str
    task: str
    method: str
    seed: int
    network: str | None
    config: dict = field(hash=False)
    parent: str | None = None
    parent_step: int | None = None


def hierarchy_name(study: StudyConfig) -> str | None:
    """The shipped hierarchy the study's tasks refer to (None: no hierarchy)."""
    from taskspace.data.hierarchy import ClassHierarchy

    if isinstance(study.data.hierarchy, dict):  # declared in the study: no shipped one
        return None
    if study.data.hierarchy is not None:
        return None if study.data.hierarchy == "none" else study.data.hierarchy
    key = dataset_key(study.data.dataset)
    if key == "imagefolder":
        return "imagenet1k"
    try:
        ClassHierarchy.for_dataset(key)
    except ValueError:
        return None
    return key


def load_hierarchy(study: StudyConfig, class_names=None):
    """The study's `ClassHierarchy` restricted to ``class_names`` when they are a subset."""
    from taskspace.data.hierarchy import ClassHierarchy

    if isinstance(study.data.hierarchy, dict):
        names = class_names if class_names is not None else static_class_names(study)
        if names is None:
            raise study_error(
                "data.hierarchy",
                "a class tree declared in the study needs a "
                "dataset whose class names are known before reading it",
            )
        try:
            return ClassHierarchy.from_tree(
                study.data.hierarchy, names, dataset=f"{study.name} (class tree of the study)"
            )
        except ValueError as exc:
            raise study_error("data.hierarchy", str(exc)) from None
    name = hierarchy_name(study)
    if name is None:
        return None
    try:
        h = ClassHierarchy.for_dataset(name)
    except ValueError as exc:
        raise study_error("data.hierarchy", str(exc)) from None
    if class_names is not None and list(h.class_names) != list(class_names):
        try:
            h = h.subset(list(class_names), dataset=name)
        except ValueError as exc:
            raise study_error(
                "data.hierarchy",
                f"the dataset's classes are not classes of the {name!r} hierarchy ({exc})",
            ) from None
    return h


def static_class_names(study: StudyConfig) -> list[str] | None:
    """The label space when it is known without the data files (None for image folders)."""
    key = dataset_key(study.data.dataset)
    if key == "digits":
        return list(_DIGITS)
    if key in ("fashion-mnist", "cifar10"):
        from taskspace.data.hierarchy import ClassHierarchy

        return list(ClassHierarchy.for_dataset(key).class_names)
    return None


def resolve_tasks(study: StudyConfig, class_names, hierarchy) -> dict[str, Task]:
    """Every task of the study as a `Task` of the label space ``class_names``."""
    tasks = {}
    for name, spec in study.tasks.items():
        where = f"tasks.{name}"
        try:
            if spec.classes == "all":
                tasks[name] = Task.from_classes(list(class_names), class_names, name=name)
            elif spec.classes is not None:
                tasks[name] = Task.from_classes(spec.classes, class_names, name=name)
            elif spec.node is not None:
                if hierarchy is None:
                    raise study_error(
                        f"{where}.node",
                        f"dataset {study.data.dataset!r} has no "
                        "class hierarchy; set `data.hierarchy` or use `classes`",
                    )
                tasks[name] = Task.from_node(spec.node, hierarchy, name=name)
            else:
                tasks[name] = Task.random(spec.k, class_names, spec.seed, name=name)
        except (ValueError, TypeError) as exc:
            if str(exc).startswith("invalid study config"):
                raise
            sub = (
                "classes" if spec.classes is not None else "node" if spec.node is not None else "k"
            )
            raise study_error(f"{where}.{sub}", str(exc)) from None
    return tasks


def _check_tasks(study: StudyConfig) -> None:
    for name, spec in study.tasks.items():
        if not SAFE_NAME.match(name):
            # A task's name starts the ids of its runs, which take only these characters: a
            # name that cannot become a run id fails here, not in every run.
            raise study_error(
                f"tasks.{name}",
                "a task name must be able to start a run id: use "
                "1-128 letters (a-z, A-Z), digits, '.', '_' or '-', starting with "
                "a letter or digit",
            )
        given = [k for k in ("classes", "node", "k") if getattr(spec, k) is not None]
        if len(given) != 1:
            raise study_error(
                f"tasks.{name}",
                f"give exactly one of `classes`, `node`, `k` (got {', '.join(given) or 'none'})",
            )
        if (spec.seed is not None) != (spec.k is not None):
            raise study_error(
                f"tasks.{name}.seed",
                "a random task needs both `k` and `seed`; other tasks take no seed",
            )
    names = static_class_names(study)
    hierarchy = load_hierarchy(study, names)
    if names is not None:
        resolve_tasks(study, names, hierarchy)
        return
    for name, spec in study.tasks.items():  # label space unknown until the data is read
        if spec.node is not None:
            if hierarchy is None:
                raise study_error(f"tasks.{name}.node", "the study has no class hierarchy")
            try:
                hierarchy.node_name(spec.node)
            except ValueError as exc:
                raise study_error(f"tasks.{name}.node", str(exc)) from None


def _spec_order(study: StudyConfig) -> list[str]:
    """Run specs with every parent before its children (file order otherwise)."""
    order, state = [], {}

    def visit(name, chain):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise study_error(
                f"runs.{name}.parent",
                "fine-tuning parents form a cycle: " + " -> ".join([*chain, name]),
            )
        state[name] = "visiting"
        parent = study.runs[name].parent
        if parent is not None:
            visit(parent, [*chain, name])
        state[name] = "done"
        order.append(name)

    for name in study.runs:
        visit(name, [])
    return order


def check_study(study: StudyConfig) -> None:
    """Cross-checks that one key alone cannot make (raises ``ValueError`` naming the key)."""
    from taskspace.nets import NETWORKS

    _check_tasks(study)
    for name, spec in study.runs.items():
        where = f"runs.{name}"
        for t in spec.tasks:
            if t not in study.tasks:
                raise study_error(
                    f"{where}.tasks", f"unknown task {t!r}; tasks: {', '.join(study.tasks)}"
                )
        if len(set(spec.seeds)) != len(spec.seeds) or min(spec.seeds) < 0:
            raise study_error(f"{where}.seeds", f"seeds must be distinct and ≥ 0, got {spec.seeds}")
        if spec.network is not None and spec.network not in NETWORKS:
            raise study_error(
                f"{where}.network", f"got {spec.network!r}; allowed: {', '.join(NETWORKS)}"
            )
        _check_method_config(study, name, spec)
        if spec.method != "finetune":
            for key in ("parent", "parent_task", "parent_steps"):
                if getattr(spec, key) is not None:
                    raise study_error(
                        f"{where}.{key}",
                        f"only 'finetune' runs have a parent (this one is {spec.method!r})",
                    )
            continue
        if spec.parent is None:
            raise study_error(
                f"{where}.parent",
                "a 'finetune' run needs `parent`, the name of "
                f"the run spec it starts from; run specs: {', '.join(study.runs)}",
            )
        if spec.parent not in study.runs:
            raise study_error(
                f"{where}.parent",
                f"unknown run spec {spec.parent!r}; run specs: {', '.join(study.runs)}",
            )
        parent = study.runs[spec.parent]
        if spec.network is not None:
            raise study_error(
                f"{where}.network", "fine-tuning keeps the parent's network; leave `network` out"
            )
        if spec.parent_task is not None and spec.parent_task not in parent.tasks:
            raise study_error(
                f"{where}.parent_task",
                f"got {spec.parent_task!r}; allowed "
                f"(the tasks of runs.{spec.parent}): {', '.join(parent.tasks)}",
            )
        missing = sorted(set(spec.seeds) - set(parent.seeds))
        if missing:
            raise study_error(
                f"{where}.seeds",
                f"seed(s) {missing} have no parent run: runs.{spec.parent}.seeds is {parent.seeds}",
            )
        if spec.parent_steps is not None and (
            not spec.parent_steps or any(s < -1 for s in spec.parent_steps)
        ):
            raise study_error(
                f"{where}.parent_steps",
                "a non-empty list of record steps of the "
                f"parent (≥ 0, or -1 for its last), got {spec.parent_steps}",
            )
        pcfg = run_config(study, parent, 0)
        explicit = pcfg.get("record_schedule")
        if spec.parent_steps and isinstance(explicit, list):
            off = [s for s in spec.parent_steps if s != -1 and s not in explicit]
            if off:
                raise study_error(
                    f"{where}.parent_steps",
                    f"step(s) {off} are not record steps "
                    f"of runs.{spec.parent} (its record_schedule: {explicit})",
                )
    _spec_order(study)
    _check_analyses(study)


def _check_analyses(study: StudyConfig) -> None:
    try:
        from taskspace.study.analyses import ANALYSES
    except ImportError:  # the analyses check their own names when they run
        return
    allowed = list(ANALYSES)
    for i, name in enumerate(study.analyses.names or []):
        if name not in allowed:
            raise study_error(
                f"analyses.names[{i}]", f"got {name!r}; allowed: {', '.join(allowed)}"
            )
    for name in study.analyses.options:
        if name not in allowed:
            raise study_error(
                f"analyses.options.{name}", f"unknown analysis; allowed: {', '.join(allowed)}"
            )


def expand_runs(study: StudyConfig) -> list[PlannedRun]:
    """Every concrete run of the study, each after the run it fine-tunes from.

    Specs are visited parents first (file order otherwise); within a spec, runs go by task, then
    seed, then parent task and parent step.
    """
    by_spec: dict[str, list[PlannedRun]] = {}
    planned = []
    for name in _spec_order(study):
        spec = study.runs[name]
        runs = []
        for task in spec.tasks:
            for seed in spec.seeds:
                cfg = run_config(study, spec, seed)
                key = f"{name}/{task}/seed{seed}"
                if spec.method != "finetune":
                    runs.append(PlannedRun(key, name, task, spec.method, seed, spec.network, cfg))
                    continue
                parents = [
                    r
                    for r in by_spec[spec.parent]
                    if r.seed == seed and (spec.parent_task is None or r.task == spec.parent_task)
                ]
                for p in parents:
                    for step in spec.parent_steps or [-1]:
                        at = "last" if step == -1 else step
                        runs.append(
                            PlannedRun(
                                f"{key}/from-{p.task}@{at}",
                                name,
                                task,
                                spec.method,
                                seed,
                                None,
                                cfg,
                                p.key,
                                None if step == -1 else step,
                            )
                        )
        by_spec[name] = runs
        planned += runs
    return planned


def _check_method_config(study: StudyConfig, name: str, spec: RunSpec) -> None:
    if "seed" in spec.config:
        raise study_error(f"runs.{name}.config.seed", "set the seeds with `seeds = [...]`")
    try:
        make_config(spec.method, run_config(study, spec, spec.seeds[0]))
    except ValueError as exc:
        msg = (
            str(exc)
            .removeprefix("invalid training config: ")
            .replace("config key `", f"key `runs.{name}.config.")
        )
        raise ValueError(f"invalid study config: {msg}") from None
