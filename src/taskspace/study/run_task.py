"""One run of a study as a Dask task: what a worker does (`train_planned`).

A task gets the study (as its JSON), the run's key and its fine-tuning parent's run id, never
arrays: the worker loads the split itself (cached per process, so a worker loads a dataset once
for all the runs it trains) and opens the study's store at the path it was given (a shared file
system). Training is `taskspace.methods.train_run`, so a task started again after its worker died
resumes from the run's last checkpoint, and a task for a complete run returns at once.

While it trains, the task sends events to the client (``Worker.log_event`` on the study's topic):
``{"key", "run_id", "step", "total", "t"}`` at most every `EVENT_INTERVAL_S` seconds, plus
``"start": True`` (with ``"records"``, the record steps already in the store) when it starts or
resumes, ``"recorded": True`` after each record, and ``"locked": True`` while another process
holds the run's lock.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

#: Seconds between progress events of one run (records and starts are sent at once).
EVENT_INTERVAL_S = 0.5
#: Seconds between attempts to take a run's lock that another process holds.
LOCK_POLL_S = 1.0


@functools.lru_cache(maxsize=2)
def prepared(study_json: str):
    """``(study, split, tasks, runs by key)`` of a study, built once per worker process.

    It also loads the training loop (and torch, seconds on a busy machine) so that a worker
    warmed with it starts a run at once: `taskspace.study` itself does not import torch.
    """
    import taskspace.methods.training_loop  # noqa: F401
    from taskspace.study.config import StudyConfig
    from taskspace.study.outputs import load_split
    from taskspace.study.plan import expand_runs, load_hierarchy, resolve_tasks

    study = StudyConfig.model_validate_json(study_json)
    split = load_split(study)
    tasks = resolve_tasks(study, split.class_names, load_hierarchy(study, split.class_names))
    return study, split, tasks, {r.key: r for r in expand_runs(study)}


class _Reporter:
    """The ``on_step`` callback of `train_run`: counts the steps trained and sends events."""

    def __init__(self, topic: str | None, key: str, store, step_delay: float):
        self.key, self.store, self.step_delay = key, store, step_delay
        self.worker = _current_worker() if topic else None
        self.topic = topic
        self.first_step: int | None = None
        self.last_step = 0
        self.started = self.sent = 0.0

    def _send(self, **msg) -> None:
        if self.worker is not None:
            self.worker.log_event(self.topic, {"key": self.key, "t": time.time(), **msg})
            self.sent = time.monotonic()

    def __call__(self, run_id: str, step: int, total: int, recorded: bool) -> None:
        now = time.monotonic()
        if self.first_step is None:
            self.first_step, self.started = step, now
            self._send(
                run_id=run_id, step=step, total=total, start=True, records=self.store.steps(run_id)
            )
        elif recorded or step == total or now - self.sent >= EVENT_INTERVAL_S:
            self._send(run_id=run_id, step=step, total=total, recorded=recorded)
        self.last_step = step
        if self.step_delay:
            time.sleep(self.step_delay)

    def locked(self) -> None:
        if time.monotonic() - self.sent >= 5 * EVENT_INTERVAL_S:
            self._send(locked=True)

    @property
    def trained(self) -> bool:
        return self.first_step is not None

    def rate(self) -> tuple[int, float]:
        """Steps trained by this task and the seconds they took (recording included)."""
        if self.first_step is None:
            return 0, 0.0
        return self.last_step - self.first_step, time.monotonic() - self.started


def _current_worker():
    from taskspace.distributed import current_worker  # no dask at `import taskspace.study`

    return current_worker()


def _threads(share_cores: str | None) -> int | None:
    if share_cores is None or _current_worker() is None:
        return None
    from distributed import get_client

    from taskspace.distributed import host_threads_of, threads_per_task

    resource = None if share_cores == "threads" else share_cores
    return threads_per_task(host_threads_of(get_client(), resource))


def train_planned(
    out: str,
    study_json: str,
    key: str,
    parent_run: str | None,
    share_cores: str | None = None,
    topic: str | None = None,
    step_delay: float = 0.0,
) -> dict:
    """Train (or resume, or skip when complete) the study's run ``key`` into ``<out>/store``.

    Parameters
    ----------
    out : str
        The study's output folder, as the worker sees it (the store is ``<out>/store``, created
        by the client).
    study_json : str
        ``StudyConfig.model_dump_json()`` of the study.
    key : str
        A `PlannedRun` key of the study.
    parent_run : str or None
        The store run id of the run's fine-tuning parent (None when it has none).
    share_cores : {"threads", "GPU"} or None
        Give torch ``cores // runs at once on this worker's host`` threads
        (`taskspace.distributed.threads_per_task`), the runs at once being the Dask threads of
        the host's workers (``"threads"``) or their GPUs (``"GPU"``). Counted here, when the run
        starts, so that workers that joined after the client submitted (an adaptive SLURM
        cluster) are counted. None: torch's threads are left as they are.
    topic : str, optional
        Event topic of the progress events (None: none are sent).
    step_delay : float
        Seconds to sleep after each step. For tests only (to kill a worker mid-run); the
        results do not depend on it.

    Returns
    -------
    dict
        ``{"key", "run_id", "trained", "steps", "seconds"}``: ``trained`` is False for a run that
        was already complete; ``steps`` and ``seconds`` are those of this task alone.
    """
    import torch

    from taskspace.distributed import reuse_freed_memory
    from taskspace.methods import RunLockedError, train_run
    from taskspace.store import Store

    if _current_worker() is not None:
        reuse_freed_memory()  # its nanny's malloc setting slows training (docs/performance.md)
    _, split, tasks, runs = prepared(study_json)
    run = runs[key]
    n_threads = _threads(share_cores)
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    store = Store.open(Path(out) / "store", mode="a")
    reporter = _Reporter(topic, key, store, step_delay)
    while True:
        try:
            run_id = train_run(
                store,
                split,
                tasks[run.task],
                run.method,
                run.network,
                run.config,
                parent=parent_run,
                parent_step=run.parent_step,
                progress=False,
                on_step=reporter,
            )
            break
        except RunLockedError:
            # Another process trains it: a task of an earlier client (killed) that its worker
            # still runs, or a worker Dask gave up on that has not died yet. Wait for it: when
            # it ends the run is complete (skipped at once) or resumable.
            reporter.locked()
            time.sleep(LOCK_POLL_S)
        except ValueError as exc:
            raise ValueError(f"run {key} (runs.{run.spec}): {exc}") from None
    steps, seconds = reporter.rate()
    return {
        "key": key,
        "run_id": run_id,
        "trained": reporter.trained,
        "steps": steps,
        "seconds": seconds,
    }
