"""A study trained on a real LocalCluster (loopback): the same store as the serial runner, a
fine-tuning child started at its parent's record, a worker killed mid-run, a client killed
mid-study; no process left behind."""

import contextlib
import copy
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from taskspace.distributed import host_cores, host_threads_of  # noqa: E402
from taskspace.methods._checkpoint import RunCheckpoints, default_root  # noqa: E402
from taskspace.store import Store  # noqa: E402
from taskspace.study import parse_study, run_study  # noqa: E402
from taskspace.study.distributed_runner import (  # noqa: E402
    early_start,
    needs_gpu,
    run_study_distributed,
)
from taskspace.study.plan import expand_runs  # noqa: E402
from taskspace.study.run_task import prepared  # noqa: E402

# End to end on a real LocalCluster: every test here is slow (make test-fast skips them).
pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux"),
        reason="finds the process holding a run's lock in /proc/locks",
    ),
    pytest.mark.slow,
]

# Four runs: two supervised (40 steps, records every 10), two fine-tuned from the first at its
# record 10 and at its end. With STEP_DELAY a supervised run takes ~2 s: long enough to kill.
STUDY = {
    "name": "tiny-dist",
    "data": {"dataset": "digits", "n_train": 200, "n_imprint": 50, "n_probe": 60},
    "tasks": {"all": {"classes": "all"}, "low": {"classes": ["0", "1", "2"]}},
    "runs": {
        "sup": {
            "method": "supervised",
            "tasks": ["all", "low"],
            "seeds": [0],
            "network": "mlp",
            "config": {
                "steps": 40,
                "batch_size": 32,
                "record_schedule": [0, 10, 20, 30, 40],
                "checkpoint_interval_s": 0,
            },
        },
        "ft": {
            "method": "finetune",
            "parent": "sup",
            "parent_task": "all",
            "tasks": ["low"],
            "parent_steps": [10, -1],
            "seeds": [0],
            "config": {"steps": 4},
        },
    },
}
STEP_DELAY = 0.05
#: Workers of the module's cluster (one thread each).
N_WORKERS = 3


@pytest.fixture(scope="module")
def study():
    return parse_study(copy.deepcopy(STUDY))


def worker_run_threads(n_workers: int) -> int:
    """Torch threads each run gets on one of ``n_workers`` one-thread workers of this host
    (``threads_per_task``)."""
    return max(1, host_cores() // n_workers)


@contextlib.contextmanager
def threads_of_a_worker_run(n_workers: int):
    """Torch threads as a worker run gets them (`worker_run_threads`): predictions are the same
    bit for bit only at equal threads (on an AMD EPYC a serial run on two threads differed from
    one-thread worker runs by 3e-8)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(worker_run_threads(n_workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def serial(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    with threads_of_a_worker_run(N_WORKERS):
        run = run_study(study, out, progress=False)
    return run


#: The module's cluster, whose (replaced) workers outlive a test.
CLUSTER: dict = {}


def new_processes(before: set[int]) -> list:
    """Descendants of this process started since ``before`` (a set of descendants' pids) that
    are still running, except the workers of the module's cluster (a nanny replaces a worker
    that a test killed)."""
    out = []
    workers = set(CLUSTER["client"].run(os.getpid).values()) if CLUSTER else set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.pid not in before and p.pid not in workers and running(p):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def check_nothing_left(before: set[int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (left := new_processes(before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    described = [f"{p.pid}: {' '.join(p.cmdline())[:200]}" for p in left]
    for p in left:
        p.kill()
    assert not left, f"processes left behind: {described}"


def descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """Every process a test starts (clusters, clients) is gone when it ends."""
    environ = dict(os.environ)
    before = descendants()
    yield
    os.environ.clear()
    os.environ.update(environ)
    check_nothing_left(before)


@pytest.fixture(scope="module")
def client(study):
    """Three warm workers (torch imported, the study's split loaded: a child then starts in well
    under the 1.5 s its parent needs for its last 30 steps)."""
    environ, before = dict(os.environ), descendants()
    cluster = distributed.LocalCluster(
        n_workers=N_WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    c = distributed.Client(cluster)
    c.run(prepared, study.model_dump_json())
    CLUSTER["client"] = c
    yield c
    CLUSTER.clear()
    c.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(environ)
    check_nothing_left(before)


def running(p) -> bool:
    """Alive, not a zombie (an exited child multiprocessing has not reaped yet), and not
    multiprocessing's resource tracker (one per interpreter, it lives as long as this one)."""
    try:
        return (
            p.status() != psutil.STATUS_ZOMBIE
            and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())
        )
    except psutil.NoSuchProcess:
        return False


def assert_same_store(a_path, b_path):
    """Same runs, records bit for bit (predictions, steps, every metric but the wall time)."""
    a, b = Store.open(a_path), Store.open(b_path)
    assert sorted(a.run_ids) == sorted(b.run_ids)
    for rid in a.run_ids:
        ta, tb = a.trajectory(rid), b.trajectory(rid)
        np.testing.assert_array_equal(ta.steps, tb.steps)
        np.testing.assert_array_equal(ta.predictions, tb.predictions)
        columns = [c for c in ta.metrics.columns if c != "wall_time"]
        assert columns == [c for c in tb.metrics.columns if c != "wall_time"]
        for c in columns:
            np.testing.assert_array_equal(
                ta.metrics[c].to_numpy(), tb.metrics[c].to_numpy(), f"{rid}: {c}"
            )
        info_a, info_b = ({k: v for k, v in t.info.items() if k != "created"} for t in (ta, tb))
        assert info_a == info_b


def quiet_console():
    return Console(file=io.StringIO(), width=200, force_terminal=False)


def done_lines(console) -> list[str]:
    return [line for line in console.file.getvalue().splitlines() if line.startswith("done ")]


def lock_holder(lock_file: Path) -> int | None:
    """The pid holding an flock on ``lock_file`` (from /proc/locks), or None."""
    inode = lock_file.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        if fields[1] == "FLOCK" and int(fields[5].rsplit(":", 1)[1]) == inode:
            return int(fields[4])
    return None


def mid_run(out: Path, run_ids: dict[str, str]):
    """A (key, holder pid) of a supervised run that holds its lock with 3 or 4 of its 5 records
    (so its resume state is at step 10 or later: the state of a record is saved just after
    it is appended)."""
    store_path = out / "store"
    if not store_path.exists():
        return None
    try:
        store = Store.open(store_path)
    except (ValueError, FileNotFoundError):
        return None
    for key, rid in run_ids.items():
        if not key.startswith("sup/") or rid not in store.run_ids:
            continue
        ckpt = RunCheckpoints(default_root(store), rid)
        if 3 <= store.n_records(rid) < 5 and ckpt.state_path.exists():
            pid = lock_holder(ckpt.dir / "lock")
            if pid is not None:
                return key, pid
    return None


# ------------------------------------------------------------------------------------- unit
def with_sup_config(**changes):
    doc = copy.deepcopy(STUDY)
    doc["runs"]["sup"]["config"].update(changes)
    return parse_study(doc)


def test_early_start_only_at_a_kept_record(study):
    runs = {r.key: r for r in expand_runs(study)}
    parent = runs["sup/all/seed0"]
    assert early_start(runs["ft/low/seed0/from-all@10"], parent)
    assert not early_start(runs["ft/low/seed0/from-all@last"], parent)  # needs the last record
    # A parent that keeps only its last model deletes model-10.pt when it saves model-20.pt.
    last = {r.key: r for r in expand_runs(with_sup_config(keep_models="last"))}
    assert not early_start(last["ft/low/seed0/from-all@10"], last["sup/all/seed0"])


def test_cuda_runs_ask_for_a_gpu(study):
    assert not any(needs_gpu(r) for r in expand_runs(study))
    gpu = {r.key: needs_gpu(r) for r in expand_runs(with_sup_config(device="cuda"))}
    assert gpu == {
        "sup/all/seed0": True,
        "sup/low/seed0": True,
        "ft/low/seed0/from-all@10": False,
        "ft/low/seed0/from-all@last": False,
    }


def test_runs_at_once_per_host_count_gpus_for_gpu_runs():
    class Scheduler:  # what `Client.scheduler_info` reports, for 2 GPU workers and a CPU one
        def scheduler_info(self, n_workers=-1):
            return {
                "workers": {
                    "tcp://10.0.0.1:4001": {"nthreads": 8, "resources": {"GPU": 1}},
                    "tcp://10.0.0.1:4002": {"nthreads": 8, "resources": {"GPU": 1}},
                    "tcp://10.0.0.2:4001": {"nthreads": 4, "resources": {}},
                }
            }

    assert host_threads_of(Scheduler()) == {"tcp://10.0.0.1": 16, "tcp://10.0.0.2": 4}
    assert host_threads_of(Scheduler(), "GPU") == {"tcp://10.0.0.1": 2, "tcp://10.0.0.2": 0}


# ------------------------------------------------------------------------------ end to end
def test_torch_threads_are_cores_over_runs_per_host(client):
    from taskspace.distributed import host_cores
    from taskspace.study.run_task import _threads

    # 3 single-threaded workers on this host: each run gets cores // 3 threads (at least 1).
    assert client.submit(_threads, "threads", pure=False).result() == max(1, host_cores() // 3)
    assert client.submit(_threads, None, pure=False).result() is None
    assert _threads("threads") is None  # not on a worker: leave torch alone


def test_same_store_as_serial_child_starts_at_parent_record(study, serial, client, tmp_path):
    out = tmp_path / "dist"
    run = run_study_distributed(study, out, client=client, progress=False, step_delay=STEP_DELAY)
    again = run_study_distributed(study, out, client=client, progress=False)
    assert run.run_ids == serial.run_ids
    assert (run.trained, run.skipped) == (4, 0)
    assert json.loads((out / "runs.json").read_text()) == serial.run_ids
    assert_same_store(out / "store", serial.store_path)
    # The child from record 10 was created before its parent saved its last model (step 40).
    store = Store.open(out / "store")
    child = store.run_info(run.run_ids["ft/low/seed0/from-all@10"])
    parent_end = (default_root(store) / run.run_ids["sup/all/seed0"] / "model-40.pt").stat()
    created = datetime.fromisoformat(child["created"]).timestamp()
    assert created < parent_end.st_mtime - 0.3, (created, parent_end.st_mtime)
    assert (again.trained, again.skipped) == (0, 4)


def test_worker_killed_mid_run_resumes_from_checkpoint(study, serial, client, tmp_path):
    out = tmp_path / "killed-worker"
    console = quiet_console()
    killed = {}

    def kill_mid_run():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            hit = mid_run(out, serial.run_ids)
            if hit is not None:
                key, pid = hit
                os.kill(pid, signal.SIGKILL)
                killed.update(key=key, pid=pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_mid_run)
    killer.start()
    run = run_study_distributed(study, out, client=client, console=console, step_delay=STEP_DELAY)
    killer.join()
    workers = client.run(os.getpid).values()
    assert killed, "no run was caught mid-way"
    assert killed["pid"] not in workers  # the nanny replaced the killed process
    assert_same_store(out / "store", serial.store_path)
    assert run.run_ids == serial.run_ids
    # Rescheduled, the killed run trained only the steps after its resume state (10, 20 or 30).
    line = next(s for s in done_lines(console) if s.split()[1] == killed["key"] + ":")
    steps = int(re.search(r": (\d+) steps", line).group(1))
    assert steps in (10, 20, 30), line


# One worker: the runs then follow one another, so a finished run and a supervised run half-way
# through exist at the same moment whatever the machine's speed (with two workers both supervised
# runs ran side by side and finished together on a quiet machine, leaving nothing to kill). It
# runs on as many cores as a run on the module's cluster gets, so that its runs train with the
# same torch threads as the serial reference (`threads_of_a_worker_run`).
CLIENT = """
import os
import sys
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cores}])
from taskspace.study import parse_study
from taskspace.study.distributed_runner import run_study_distributed
if __name__ == "__main__":
    run_study_distributed(parse_study({study!r}), sys.argv[1], n_workers=1, progress=False,
                          step_delay={delay!r})
"""


def test_client_killed_then_rerun_finishes_without_redoing(study, serial, client, tmp_path):
    out = tmp_path / "killed-client"
    script = tmp_path / "client.py"
    script.write_text(
        CLIENT.format(study=STUDY, delay=STEP_DELAY, cores=worker_run_threads(N_WORKERS))
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs_file = out / "runs.json"
    deadline = time.monotonic() + 240  # a busy machine: the client starts 3 processes
    started = time.monotonic()
    try:
        # Kill it once a run is finished and another one is half-way.
        while time.monotonic() < deadline and proc.poll() is None:
            finished = json.loads(runs_file.read_text()) if runs_file.exists() else {}
            if finished and mid_run(out, serial.run_ids) is not None:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the study ended before the client could be killed"
        assert finished, f"no run finished in {time.monotonic() - started:.0f} s"
        family = proc_tree(proc.pid)
        proc.kill()
        proc.wait()
        # Its cluster's nannies and workers notice their parent is gone and exit.
        _, alive = psutil.wait_procs(family, timeout=15)
        assert not alive, f"processes of the killed client still running: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = Store.open(out / "store")
    before = {k: store.trajectory(rid).metrics for k, rid in finished.items()}
    run = run_study_distributed(study, out, client=client, progress=False)
    assert run.skipped >= len(finished) and run.trained + run.skipped == 4
    assert_same_store(out / "store", serial.store_path)
    store = Store.open(out / "store")
    for key, metrics in before.items():  # not trained again: even the wall times are the same
        assert store.trajectory(finished[key]).metrics.equals(metrics), key


def proc_tree(pid: int) -> list:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


TOML = """
name = "tiny-cli"
[data]
dataset = "digits"
n_train = 200
n_imprint = 50
n_probe = 60
[tasks.all]
classes = "all"
[tasks.low]
classes = ["0", "1", "2"]
[tasks.high]
classes = ["7", "8", "9"]
[runs.sup]
method = "supervised"
tasks = ["all", "low", "high"]
seeds = [0]
network = "mlp"
config = { steps = 8, batch_size = 32, record_schedule = [0, 4, 8] }
"""


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "taskspace", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_run_workers(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TOML)
    out = cli(
        "run", config, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1", "--out", tmp_path / "o"
    )
    assert out.returncode != 0 and "not both" in out.stderr and not (tmp_path / "o").exists()
    out = cli("run", config, "--workers", "2", "--out", tmp_path / "o")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "3 runs (3 trained, 0 already complete)" in out.stdout
    with threads_of_a_worker_run(2):
        serial = run_study(parse_study(tomllib.loads(TOML)), tmp_path / "serial", progress=False)
    assert_same_store(tmp_path / "o" / "store", serial.store_path)
    assert (tmp_path / "o" / "report.html").is_file()


FAULTS = """
import json, resource, sys
import numpy as np
from taskspace.distributed import reuse_freed_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        a = np.ones(2**18)   # 2 MiB: above the 128 KiB mmap threshold the variable freezes
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
before = faults()
changed = reuse_freed_memory()
faults()
print(json.dumps([before, changed, faults()]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_reuse_freed_memory_undoes_the_nannys_malloc_setting():
    """With MALLOC_TRIM_THRESHOLD_ set (as Dask's nannies do), every 2 MiB array is mapped afresh
    and its 512 pages fault in again; after `reuse_freed_memory` the freed block is reused. Without
    the variable nothing is changed."""

    def run(env):
        out = subprocess.run(
            [sys.executable, "-c", FAULTS],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=True,
        )
        return json.loads(out.stdout)

    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    before, changed, after = run({**base, "MALLOC_TRIM_THRESHOLD_": "65536"})
    assert changed is True
    assert before >= 100 * 400 and after < 100 * 10, (before, after)
    before, changed, after = run(base)
    assert changed is False and before < 100 * 10 and after < 100 * 10, (before, after)
