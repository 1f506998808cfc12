"""Train a study's runs on a Dask cluster: one task per run (extra ``distributed``).

`run_study_distributed` does what `taskspace.study.run_study` does — the same store, the same
run ids, the same records bit for bit — with every run a task
(`taskspace.study.run_task.train_planned`) on a cluster: a temporary ``LocalCluster`` of worker
processes, or an existing cluster (``scheduler=`` its address, or ``client=``).

The study as a task graph. A run without a parent is submitted at once. A fine-tuning run is
submitted as soon as what it starts from exists: for ``parent_step = s`` the moment the parent
reports its record at step ``s`` (its model file is written before the record is appended), for
the parent's last record (``parent_step`` None) when the parent's task has finished. The client
decides this from the tasks' progress events, not through Dask dependencies, so a child does not
wait for the rest of its parent's training. When the parent keeps only its last model
(``keep_models = "last"``) a child always waits for the whole parent, whose later models would
delete the one it needs.

Fault tolerance comes from the runs, not from Dask's results: a run's id is a hash of what it
computes, its records are appended atomically and its resume state is saved at every record. A
worker that dies mid-run is replaced and the task is given to another worker by Dask; it resumes
the run from its last checkpoint (`train_run`), and the records end up bit for bit those of an
uninterrupted run. A client that dies loses its futures; running the study again skips the
complete runs (their tasks return at once) and resumes the interrupted ones.

Workers must see ``out`` at the same path as the client (a shared file system), and the data
(``TASKSPACE_DATA``) too. Nothing here imports ``dask`` or ``torch`` at module import time.
"""

from __future__ import annotations

import json
import queue
import time
import uuid
from pathlib import Path

from taskspace.study.config import StudyConfig
from taskspace.study.outputs import (
    RUNS_FILE,
    STUDY_FILE,
    StudyRun,
    clock,
    load_split,
    open_store,
    select_runs,
)
from taskspace.study.plan import PlannedRun
from taskspace.study.run_task import train_planned

#: Seconds between two looks at the tasks' states and events in the client's loop.
POLL_S = 0.1


def needs_gpu(run: PlannedRun) -> bool:
    """Whether the run asks for a GPU (``device = "cuda"`` in its config): its task then asks
    Dask for ``resources={"GPU": 1}``, so a cluster of GPU workers places one run per GPU."""
    return run.config.get("device") == "cuda"


def early_start(run: PlannedRun, parent: PlannedRun) -> bool:
    """Whether a fine-tuning run may start at its parent's record (before the parent ends)."""
    return run.parent_step is not None and parent.config.get("keep_models", "records") == "records"


def run_study_distributed(
    study: StudyConfig,
    out,
    *,
    n_workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    only=None,
    progress: bool = True,
    console=None,
    step_delay: float = 0.0,
) -> StudyRun:
    """Train and record every run of ``study`` into ``<out>/store`` on a Dask cluster.

    Parameters
    ----------
    study : StudyConfig
    out : path
        Output folder (created), seen by every worker at the same path.
    n_workers : int, optional
        Worker processes of the temporary ``LocalCluster`` (one thread each; default one per
        core). Each run's torch gets ``cores // runs at once on its host`` threads: the Dask
        threads of the host's workers, or for a study with cuda runs their GPUs.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) instead.
    client : distributed.Client, optional
        An existing client instead.
    only : list of str, optional
        Run only these run specs (and the specs they fine-tune from).
    progress : bool
        Show the live view of all runs (`taskspace.study._live.StudyView`) and a line per run.
    console : rich.console.Console, optional
    step_delay : float
        Seconds each training step sleeps. For tests only (killing a worker mid-run).

    Returns
    -------
    StudyRun
        As `run_study`: the store, each planned run's id, runs trained and skipped.
    """
    from rich.console import Console

    from taskspace.distributed import cluster_client

    console = console or Console(quiet=not progress)
    out = Path(out).resolve()
    started = time.perf_counter()
    planned = select_runs(study, only)
    split = load_split(study)
    out.mkdir(parents=True, exist_ok=True)  # only once the data loaded, as `run_study`
    # The client creates the store (one writer for the header); workers only open it.
    open_store(study, split, out / "store")
    (out / STUDY_FILE).write_text(study.model_dump_json(indent=1), encoding="utf-8")
    resources = {"GPU": 1} if any(needs_gpu(r) for r in planned) else None
    with cluster_client(client, scheduler, n_workers, resources=resources) as cl:
        # GPU runs are as many per host as its GPUs, whatever the workers' threads.
        graph = _StudyGraph(cl, study, out, planned, "GPU" if resources else "threads", step_delay)
        graph.run(console, progress)
    run_ids = {r.key: graph.run_ids[r.key] for r in planned}
    (out / RUNS_FILE).write_text(json.dumps(run_ids, indent=1), encoding="utf-8")
    seconds = time.perf_counter() - started
    console.print(
        f"{len(planned)} runs ({graph.trained} trained, {graph.skipped} already "
        f"complete) in {clock(seconds)}; store: {out / 'store'}",
        highlight=False,
        markup=False,
    )
    return StudyRun(out, out / "store", run_ids, graph.trained, graph.skipped, seconds)


class _StudyGraph:
    """The client's side of a distributed study: submits runs when they are ready, follows
    their events and results."""

    def __init__(self, client, study, out: Path, planned, share_cores, step_delay):
        self.client, self.out, self.planned = client, out, planned
        self.study_json = study.model_dump_json()
        self.share_cores, self.step_delay = share_cores, step_delay
        self.by_key = {r.key: r for r in planned}
        self.token = uuid.uuid4().hex[:12]
        self.topic = f"taskspace-train-{self.token}"
        self.events: queue.Queue = queue.Queue()
        self.futures: dict = {}  # future -> key
        self.submitted: set[str] = set()
        self.results: dict[str, dict] = {}
        self.run_ids: dict[str, str] = {}
        self.records: dict[str, set[int]] = {}  # key -> record steps known to be in the store
        self.trained = self.skipped = 0

    # ------------------------------------------------------------------ readiness
    def _parent_id(self, run: PlannedRun) -> str | None:
        """The parent's run id once the run can start (None: no parent), else raises KeyError."""
        if run.parent is None:
            return None
        parent = self.by_key[run.parent]
        if run.parent in self.results:
            return self.results[run.parent]["run_id"]
        if early_start(run, parent) and run.parent_step in self.records.get(run.parent, ()):
            return self.run_ids[run.parent]
        raise KeyError(run.parent)

    def _submit_ready(self) -> None:
        for run in self.planned:
            if run.key in self.submitted:
                continue
            try:
                parent_run = self._parent_id(run)
            except KeyError:
                continue
            fut = self.client.submit(
                train_planned,
                str(self.out),
                self.study_json,
                run.key,
                parent_run,
                self.share_cores,
                self.topic,
                self.step_delay,
                pure=False,
                key=f"taskspace-run-{self.token}-{len(self.submitted)}",
                resources={"GPU": 1} if needs_gpu(run) else None,
            )
            self.futures[fut] = run.key
            self.submitted.add(run.key)

    # ------------------------------------------------------------------ the loop
    def _on_event(self, msg: dict, view) -> None:
        key = msg.get("key")
        if key not in self.by_key or key in self.results:
            return  # a late event of a finished run
        if "run_id" in msg:
            self.run_ids[key] = msg["run_id"]
            known = self.records.setdefault(key, set())
            if msg.get("start"):
                known.update(msg.get("records") or ())
            if msg.get("recorded"):
                known.add(int(msg["step"]))
        if view is not None:
            view.event(msg)

    def _finish(self, fut, key: str, view) -> None:
        if fut.status == "error":
            exc = fut.exception()
            self.client.cancel(list(self.futures))
            raise exc
        result = fut.result()
        self.results[key] = result
        self.run_ids[key] = result["run_id"]
        done = {r.key: self.run_ids[r.key] for r in self.planned if r.key in self.results}
        (self.out / RUNS_FILE).write_text(json.dumps(done, indent=1), encoding="utf-8")
        if result["trained"]:
            self.trained += 1
        else:
            self.skipped += 1
        if view is not None:
            view.finished(key, result)

    def run(self, console, progress: bool) -> None:
        from taskspace.study._live import StudyView

        self.client.subscribe_topic(self.topic, lambda event: self.events.put(event[1]))
        view = StudyView([r.key for r in self.planned], console) if progress else None
        try:
            if view is not None:
                view.__enter__()
            self._submit_ready()
            while self.futures:
                while True:
                    try:
                        self._on_event(self.events.get_nowait(), view)
                    except queue.Empty:
                        break
                for fut in [f for f in self.futures if f.done()]:
                    self._finish(fut, self.futures.pop(fut), view)
                self._submit_ready()
                if self.futures:
                    time.sleep(POLL_S)
            missing = [r.key for r in self.planned if r.key not in self.results]
            if missing:  # pragma: no cover - every run is submitted once its parent ended
                raise RuntimeError(f"runs never became ready: {missing}")
        finally:
            if view is not None:
                view.__exit__(None, None, None)
            self.client.unsubscribe_topic(self.topic)
