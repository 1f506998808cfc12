"""Trackers: what the Recorder and the callbacks log to TensorBoard and W&B, read back with
TensorBoard's own event reader and projector config, and W&B's offline run files (no network)."""

import glob
import json
import struct
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorboard")
wandb = pytest.importorskip("wandb")

import taskspace as ts  # noqa: E402
from taskspace.integrations.loggers import as_tracker, log_picture  # noqa: E402
from taskspace.integrations.tensorboard import TensorBoardTracker  # noqa: E402
from taskspace.integrations.wandb import WandbTracker  # noqa: E402
from taskspace.store import Store  # noqa: E402

N, C, H = 60, 3, 5
SCHEDULE = [0, 2, 5, 10, 20]
SCALARS = ("progress", "d_B_to_truth", "d_B_travelled", "length", "probe_accuracy", "probe_loss")


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    x = rng.normal(size=(N, H)) + 2.0 * np.eye(C, H)[y]
    return torch.as_tensor(x, dtype=torch.float32), y


def train(store, run_id, loggers, seed=0, schedule=SCHEDULE, steps=20, start=0):
    x, y = blobs()
    torch.manual_seed(seed)
    net = torch.nn.Linear(H, C)
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    rec = ts.Recorder(
        store, run_id, model=net, probe=(x, y), mode="head", schedule=schedule, loggers=loggers
    )
    for step in range(start, steps + 1):
        rec.maybe_record(step)
        loss = torch.nn.functional.cross_entropy(net(x), torch.as_tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return rec


@pytest.fixture
def store(tmp_path):
    _, y = blobs()
    return Store.create(tmp_path / "s", y, ["a", "b", "c"])


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_CODE", "true")
    return tmp_path


def expected_numbers(store, run_id):
    """Every logged scalar recomputed from the stored trajectory."""
    traj = store.trajectory(run_id)
    P = traj.predictions.astype(np.float64)
    labels = store.labels
    truth = np.eye(C)[labels]
    out = {
        "progress": ts.progress(P, labels),
        "d_B_to_truth": ts.bhattacharyya(P, truth[None]),
        "length": np.array([float(ts.length(P[: t + 1])) for t in range(len(P))]),
        "d_B_travelled": ts.bhattacharyya(P[:-1], P[1:]),
        "probe_accuracy": traj.metrics["accuracy"].to_numpy(),
        "probe_loss": traj.metrics["loss"].to_numpy(),
    }
    return traj.steps, out


def tensorboard_scalars(log_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {
        tag: ([e.step for e in acc.Scalars(tag)], [e.value for e in acc.Scalars(tag)])
        for tag in acc.Tags()["scalars"]
    }


def tensorboard_projector(log_dir):
    """The embeddings of the projector config TensorBoard reads, with their tensors and
    metadata tables."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    files = glob.glob(f"{log_dir}/**/projector_config.pbtxt", recursive=True)
    assert len(files) == 1, files
    config = text_format.Parse(open(files[0]).read(), ProjectorConfig())
    out = []
    for emb in config.embeddings:
        tensor = np.loadtxt(f"{log_dir}/{emb.tensor_path}", delimiter="\t", ndmin=2)
        with open(f"{log_dir}/{emb.metadata_path}") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        out.append((emb.tensor_name, tensor, rows))
    return out


def test_recorder_logs_every_record_to_tensorboard(store, tmp_path):
    store.add_run("r0", task="abc", classes=None, method="sgd", seed=0)
    train(store, "r0", [TensorBoardTracker(tmp_path / "tb")])
    steps, want = expected_numbers(store, "r0")
    got = tensorboard_scalars(tmp_path / "tb")
    for name in SCALARS:
        tag_steps, values = got[f"taskspace/{name}"]
        expect = want[name]
        if name == "d_B_travelled":
            assert tag_steps == list(steps[1:])
        else:
            assert tag_steps == list(steps)
        # event files hold float32
        np.testing.assert_allclose(values, expect, rtol=1e-6, atol=1e-7, err_msg=name)
    assert got["taskspace/progress"][1][-1] > got["taskspace/progress"][1][0]  # it learns
    # The schedule completed: the InPCA picture of the store's models.
    [(name, tensor, rows)] = tensorboard_projector(tmp_path / "tb")
    assert name == "taskspace/inpca:00020"  # tag:global step
    assert rows[0] == ["model_id", "run_id", "task", "method", "seed", "step"]
    assert [r[0] for r in rows[1:]] == [f"r0/{t}" for t in range(5)]
    assert [int(r[5]) for r in rows[1:]] == SCHEDULE
    fit = ts.InPCA(n_components=3).fit(store.collection()[0][:])
    np.testing.assert_allclose(np.abs(tensor), np.abs(fit.embedding_), atol=1e-5)
    for k in (1, 2, 3):
        _, stress = got[f"taskspace/inpca/explained_stress_{k}"]
        np.testing.assert_allclose(stress, [fit.explained_stress_[k - 1]], rtol=1e-6)


def test_a_resumed_run_continues_its_length(store, tmp_path):
    store.add_run("r0", task="abc", classes=None, method="sgd", seed=0)
    train(store, "r0", [], schedule=[0, 2, 5])  # first part, no tracker
    tracker = TensorBoardTracker(tmp_path / "tb", picture=False)
    x, y = blobs()
    net = torch.nn.Linear(H, C)
    rec = ts.Recorder(
        store, "r0", model=net, probe=(x, y), mode="head", schedule=[0, 2, 5, 10], loggers=[tracker]
    )
    rec.maybe_record(10)
    tracker.close()
    _, want = expected_numbers(store, "r0")
    got = tensorboard_scalars(tmp_path / "tb")
    assert got["taskspace/length"][0] == [10]
    np.testing.assert_allclose(got["taskspace/length"][1], want["length"][-1:], rtol=1e-6)
    np.testing.assert_allclose(
        got["taskspace/d_B_travelled"][1], want["d_B_travelled"][-1:], rtol=1e-6
    )


def read_wandb_records(run_dir, timeout=60.0):
    """The records of an offline run file, once its exit record is written (W&B's service
    process may still be writing when ``finish`` returns)."""
    deadline = time.monotonic() + timeout
    while True:
        records = parse_wandb_records(run_dir)
        if (
            any(r.WhichOneof("record_type") == "exit" for r in records)
            or time.monotonic() > deadline
        ):
            return records
        time.sleep(0.2)


def parse_wandb_records(run_dir):
    """The records of an offline run file: the LevelDB log framing W&B writes (a 7-byte file
    header, 32 KiB blocks, 7-byte chunk headers) around its own protobuf ``Record``s."""
    from wandb.proto import wandb_internal_pb2

    [path] = glob.glob(f"{run_dir}/run-*.wandb")
    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, block, pending, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(pending)
            records.append(rec)
    return records


def wandb_history(run_dir) -> list[dict]:
    """The logged rows; a media value (nested keys: path, sha256, ...) as a dict."""
    rows = []
    for rec in read_wandb_records(run_dir):
        if rec.WhichOneof("record_type") != "history":
            continue
        row = {}
        for item in rec.history.item:
            keys = [item.key] if item.key else list(item.nested_key)
            target = row
            for k in keys[:-1]:
                target = target.setdefault(k, {})
            target[keys[-1]] = json.loads(item.value_json)
        rows.append(row)
    return rows


@pytest.mark.slow
def test_recorder_logs_to_wandb_offline(store, offline):
    store.add_run("r0", task="abc", classes=None, method="sgd", seed=0)
    store.add_run("r1", task="ab", classes=None, method="sgd", seed=1)
    train(store, "r1", [], seed=1)
    run = wandb.init(project="taskspace-test")
    run_dir = run.dir.rsplit("/files", 1)[0]
    train(store, "r0", [WandbTracker(run)])
    run.finish()
    history = wandb_history(run_dir)
    steps, want = expected_numbers(store, "r0")
    scalars = [h for h in history if "taskspace/progress" in h]
    assert [h["taskspace/step"] for h in scalars] == list(steps)
    for name in SCALARS:
        values = [h[f"taskspace/{name}"] for h in scalars if f"taskspace/{name}" in h]
        np.testing.assert_allclose(values, want[name], rtol=1e-12, err_msg=name)
    [picture] = [h for h in history if "taskspace/inpca_table" in h]
    assert picture["taskspace/step"] == 20
    table = json.load(open(f"{run_dir}/files/{picture['taskspace/inpca_table']['path']}"))
    assert table["columns"] == [
        "model_id",
        "run_id",
        "task",
        "method",
        "seed",
        "step",
        "axis_1",
        "axis_2",
        "axis_3",
    ]
    assert sorted(r[0] for r in table["data"]) == sorted(
        f"r{i}/{t}" for i in (0, 1) for t in range(5)
    )
    assert {r[2] for r in table["data"]} == {"abc", "ab"}
    fig = json.load(open(f"{run_dir}/files/{picture['taskspace/inpca']['path']}"))
    assert {t["type"] for t in fig["data"]} == {"scatter3d"}
    assert sum(len(plotly_values(t["x"])) for t in fig["data"]) == 10


def plotly_values(v) -> np.ndarray:
    """A plotly JSON array: a list, or {"dtype", "bdata"} (base64) as plotly ≥ 6 writes."""
    import base64

    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def test_lightning_with_tensorboard_and_wandb_loggers(store, tmp_path, offline):
    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from taskspace.integrations.lightning import RecorderCallback

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(H, C)

        def forward(self, x):
            return self.lin(x)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.3)

    x, y = blobs()
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, torch.as_tensor(y)), batch_size=20
    )
    for name, logger in (
        ("tb", TensorBoardLogger(tmp_path / "tb", name="r_tb")),
        ("wb", WandbLogger(project="taskspace-test", offline=True, save_dir=str(tmp_path))),
    ):
        callback = RecorderCallback(
            store.path,
            probe=(x, y),
            task="abc",
            seed=0,
            run_id=name,
            schedule=[0, 3, 6, 9],
            loggers=[logger],
        )
        torch.manual_seed(0)
        trainer = pl.Trainer(
            max_steps=9,
            callbacks=[callback],
            logger=logger,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            accelerator="cpu",
        )
        trainer.fit(Net(), data)
        if name == "wb":
            run_dir = logger.experiment.dir.rsplit("/files", 1)[0]
            logger.experiment.finish()
    reopened = Store.open(store.path)
    for name in ("tb", "wb"):
        assert reopened.steps(name) == [0, 3, 6, 9]
    tb = tensorboard_scalars(logger_dir := tmp_path / "tb" / "r_tb" / "version_0")
    steps, want = expected_numbers(reopened, "tb")
    assert tb["taskspace/length"][0] == list(steps)
    np.testing.assert_allclose(tb["taskspace/length"][1], want["length"], rtol=1e-6)
    [(_, tensor, rows)] = tensorboard_projector(logger_dir)
    assert len(rows) == 1 + 4 and tensor.shape == (4, 3)  # the store held run "tb" only
    history = wandb_history(run_dir)
    steps, want = expected_numbers(reopened, "wb")
    progress = [h["taskspace/progress"] for h in history if "taskspace/progress" in h]
    np.testing.assert_allclose(progress, want["progress"], rtol=1e-12)
    [picture] = [h for h in history if "taskspace/inpca_table" in h]
    assert picture["taskspace/inpca_table"]["nrows"] == 8  # runs tb and wb


def test_a_store_of_one_model_ends_without_a_picture(store, tmp_path):
    store.add_run("r0", task="abc", classes=None, method="sgd", seed=0)
    train(store, "r0", [TensorBoardTracker(tmp_path / "tb")], schedule=[0])
    got = tensorboard_scalars(tmp_path / "tb")
    assert got["taskspace/length"] == ([0], [0.0]) and "taskspace/d_B_travelled" not in got
    assert not glob.glob(f"{tmp_path}/tb/**/projector_config.pbtxt", recursive=True)


def test_log_picture_on_demand_and_as_tracker(store, tmp_path):
    store.add_run("r0", task="abc", classes=None, method="sgd", seed=0)
    train(store, "r0", [])
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(tmp_path / "tb")
    fit = ts.log_picture(Store.open(store.path, "a"), writer, step=7)
    writer.close()
    [(_, tensor, rows)] = tensorboard_projector(tmp_path / "tb")
    np.testing.assert_allclose(tensor, fit.estimator.embedding_, atol=1e-5)
    assert [r[0] for r in rows[1:]] == fit.model_ids
    assert tensorboard_scalars(tmp_path / "tb")["taskspace/inpca/eigenvalue_1"][0] == [7]
    with pytest.raises(TypeError, match="cannot log to a dict"):
        as_tracker({})
    with pytest.raises(TypeError, match="not a tracker"):
        train(store, "r0", [object()])
    with pytest.raises(ValueError, match="at least 2 models"):
        log_picture(store, writer, query="record == 0 and run_id == 'r0'")


@pytest.mark.parametrize("module, extra", [("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_import_errors_name_the_extra(monkeypatch, tmp_path, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    if module == "tensorboard":
        monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
        with pytest.raises(ImportError, match=rf"taskspace\[{extra}\]"):
            TensorBoardTracker(tmp_path / "tb")
    else:
        with pytest.raises(ImportError, match=rf"taskspace\[{extra}\]"):
            WandbTracker()
