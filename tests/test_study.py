"""Study configs (validation, quick overrides, expansion order), the runner, and the CLI."""

import copy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from taskspace.store import Store
from taskspace.study import expand_runs, load_study, parse_study, run_study

STUDIES = Path(__file__).parent.parent / "studies"

TINY = {
    "name": "tiny",
    "data": {"dataset": "digits", "n_train": 200, "n_imprint": 50, "n_probe": 60},
    "tasks": {"all": {"classes": "all"}, "low": {"classes": ["0", "1", "2"]}},
    "schedule": {"n_records": 3},
    "runs": {
        "sup": {
            "method": "supervised",
            "tasks": ["all", "low"],
            "seeds": [0],
            "network": "mlp",
            "config": {"steps": 6, "batch_size": 32, "record_schedule": [0, 3, 6]},
        },
        "ft": {
            "method": "finetune",
            "parent": "sup",
            "parent_task": "all",
            "tasks": ["low"],
            "parent_steps": [3, -1],
            "seeds": [0],
            "config": {"steps": 4},
        },
    },
    "quick": {
        "all_runs": {"config": {"steps": 2}},
        "data": {"n_train": 100},
        "runs": {"sup": {"config": {"record_schedule": [0, 1, 2]}}, "ft": {"parent_steps": [1]}},
    },
}


def doc(**changes):
    d = copy.deepcopy(TINY)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = d
        for p in parents:
            node = node[p]
        node[last] = value
    return d


# The study with its "sup" runs only ([quick] is checked always, so it must not name "ft").
SUP_ONLY = doc(runs={"sup": TINY["runs"]["sup"]}, quick__runs={"sup": TINY["quick"]["runs"]["sup"]})


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "changes, key, allowed",
    [
        ({"colour": 1}, "`colour`", "data, tasks, runs"),
        ({"data__n_trian": 5}, "`data.n_trian`", "n_train"),
        ({"runs__sup__method": "sgd"}, "`runs.sup.method`", "'supervised'"),
        ({"runs__sup__seeds": "0"}, "`runs.sup.seeds`", ""),
        ({"runs__sup__config": {"lr": -1.0}}, "`runs.sup.config.lr`", "greater than 0"),
        ({"runs__sup__config": {"optimizer": "rmsprop"}}, "`runs.sup.config.optimizer`", "'adam'"),
        ({"runs__sup__network": "vgg"}, "`runs.sup.network`", "resnet50"),
        ({"runs__sup__tasks": ["nope"]}, "`runs.sup.tasks`", "all, low"),
        ({"tasks__low": {"classes": ["0", "eleven"]}}, "`tasks.low.classes`", "unknown class"),
        ({"tasks__low": {"k": 3}}, "`tasks.low.seed`", "both `k` and `seed`"),
        ({"tasks__low": {"classes": ["0", "1"], "node": "x"}}, "`tasks.low`", "exactly one"),
        ({"runs__ft__parent": None}, "`runs.ft.parent`", "sup, ft"),
        ({"runs__ft__parent": "gone"}, "`runs.ft.parent`", "unknown run spec"),
        ({"runs__ft__parent_steps": [4]}, "`runs.ft.parent_steps`", "[0, 3, 6]"),
        ({"runs__ft__seeds": [0, 1]}, "`runs.ft.seeds`", "[1]"),
        ({"runs__sup__config": {"seed": 3}}, "`runs.sup.config.seed`", "seeds"),
        ({"runs__sup__parent": "ft"}, "`runs.sup.parent`", "only 'finetune'"),
    ],
)
def test_bad_config_names_the_key(changes, key, allowed):
    with pytest.raises(ValueError) as err:
        parse_study(doc(**changes))
    assert key in str(err.value) and allowed in str(err.value)


def test_unknown_dataset_fails_with_the_config_and_creates_nothing(tmp_path):
    with pytest.raises(ValueError) as err:
        parse_study(doc(data__dataset="mnist"))
    assert "study key `data.dataset`: unknown dataset 'mnist'; known: cifar10, digits" in str(
        err.value
    ) and "[" not in str(err.value)
    # Data that cannot be loaded: the error comes before the output folder is made.
    missing = parse_study(
        doc(
            data__dataset="fashion-mnist",
            data__root=str(tmp_path / "none"),
            data__options={"download": False},
            tasks__low={"classes": ["Trouser", "Bag", "Coat"]},
        )
    )
    with pytest.raises(FileNotFoundError):
        run_study(missing, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "changes, message",
    [
        # A union type (int | float | None) fails once per branch: one clause, every branch named.
        (
            {"data__n_probe": "lots"},
            "invalid study config: study key `data.n_probe`: expected an integer or a number "
            "(got 'lots')",
        ),
        (
            {"runs__sup__seeds": "0"},
            "invalid study config: study key `runs.sup.seeds`: expected a list (got '0')",
        ),
    ],
)
def test_a_bad_type_is_one_clause(changes, message):
    with pytest.raises(ValueError) as err:
        parse_study(doc(**changes))
    assert str(err.value) == message


def test_unknown_hierarchy_node():
    d = doc(data__dataset="fashion-mnist", tasks__low={"node": "footwear.n.01"})
    with pytest.raises(ValueError, match=r"`tasks.low.node`"):
        parse_study(d)
    d = doc(tasks__low={"node": "garment.n.01"})  # digits has no hierarchy
    with pytest.raises(ValueError, match=r"`tasks.low.node`.*no class hierarchy"):
        parse_study(d)


def test_parent_cycle():
    d = doc(runs__sup={"method": "finetune", "parent": "ft", "tasks": ["all"]})
    with pytest.raises(ValueError, match="cycle"):
        parse_study(d)


def test_bad_toml(tmp_path):
    (tmp_path / "s.toml").write_text("name = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_study(tmp_path / "s.toml")


# ------------------------------------------------------------------------------ expansion
def test_expansion_puts_parents_first():
    d = doc()
    d["runs"] = {"ft": d["runs"]["ft"], "sup": d["runs"]["sup"]}  # child listed first
    runs = expand_runs(parse_study(d))
    keys = [r.key for r in runs]
    assert keys == [
        "sup/all/seed0",
        "sup/low/seed0",
        "ft/low/seed0/from-all@3",
        "ft/low/seed0/from-all@last",
    ]
    assert [(r.parent, r.parent_step) for r in runs[2:]] == [
        ("sup/all/seed0", 3),
        ("sup/all/seed0", None),
    ]
    assert runs[0].config["seed"] == 0 and runs[0].config["n_records"] == 3


def test_quick_overrides():
    full, quick = parse_study(doc()), parse_study(doc(), quick=True)
    assert full.data.n_train == 200 and quick.data.n_train == 100
    assert full.runs["sup"].config["steps"] == 6 and quick.runs["sup"].config["steps"] == 2
    assert quick.runs["sup"].config["batch_size"] == 32  # merged, not replaced
    assert quick.runs["ft"].parent_steps == [1] and quick.quick
    d = doc(quick={"all_runs": {"config": {"epochs": 1.0}}})  # epochs replaces steps
    assert "steps" not in parse_study(d, quick=True).runs["sup"].config
    with pytest.raises(ValueError, match=r"`quick\.runs\.nope`"):
        parse_study(doc(quick={"runs": {"nope": {}}}), quick=True)


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_studies_validate(path):
    for quick in (False, True):
        study = load_study(path, quick=quick)
        runs = expand_runs(study)
        assert len({r.key for r in runs}) == len(runs)
        if quick:
            assert len(runs) < len(expand_runs(load_study(path)))


def test_reference_study_shape():
    """The properties issue 10 asks of the design (docs/results.md, "Design")."""
    from taskspace.study.plan import load_hierarchy, resolve_tasks, static_class_names

    study = load_study(STUDIES / "fashion-mnist.toml")
    assert {"supervised", "finetune", "protonet", "simclr", "fixmatch"} <= {
        s.method for s in study.runs.values()
    }
    assert all(len(s.seeds) >= 2 for s in study.runs.values())
    assert all(len(s.seeds) >= 3 for s in study.runs.values() if s.method != "fixmatch")
    assert study.tasks["footwear"].node == "footwear.n.02"
    names = static_class_names(study)
    hierarchy = load_hierarchy(study, names)
    tasks = resolve_tasks(study, names, hierarchy)
    D = hierarchy.class_distances("path")
    # Finding 2: ≥ 8 tasks of each size, spanning narrow to diverse.
    f2 = study.analyses.options["progress_on_other_tasks"]["tasks"]
    assert set(f2) <= set(study.runs["supervised"].tasks)
    for size in (2, 3):
        same = [tasks[t].classes for t in f2 if len(tasks[t].classes) == size]
        div = [D[np.ix_(c, c)][np.triu_indices(size, 1)].mean() for c in same]
        assert len(same) >= 8 and min(div) <= 2 and max(div) >= 7
    # Design v3 (docs/results.md): finding 2 on all 45 pairs and 30 evenly spaced triples;
    # finding 3 on every two-class task; finding 5 on 24 runs per method.
    from taskspace.study.task_sets import all_tasks, evenly_spaced_diversity

    by_classes = {tuple(tasks[t].classes) for t in f2}
    assert set(all_tasks(hierarchy, 2)) <= by_classes
    assert set(evenly_spaced_diversity(hierarchy, 3, 30)) <= by_classes and len(f2) == 75
    f3 = [tasks[t].classes for t in study.analyses.options["tree"]["tasks"]]
    assert sorted(map(tuple, f3)) == all_tasks(hierarchy, 2)
    for method in ("protonet", "supervised_long"):
        spec = study.runs[method]
        assert len(spec.tasks) * len(spec.seeds) >= 24
    # Findings 4 and 5: fine-tuning from the end of the long runs; protonet as long as them.
    assert (
        study.runs["finetune"].parent == "supervised_long"
        and -1 in study.runs["finetune"].parent_steps
    )
    assert study.runs["protonet"].config["steps"] == study.runs["supervised_long"].config["steps"]
    mlp = load_study(STUDIES / "fashion-mnist-mlp.toml")
    assert {s.network for s in mlp.runs.values()} == {"mlp"}
    assert mlp.runs["supervised"].tasks == study.runs["supervised"].tasks
    builtin = Path(__file__).parent.parent / "src/taskspace/study/builtin/digits-demo.toml"
    assert builtin.read_text() == (STUDIES / "digits-demo.toml").read_text()


def test_demo_study_declares_a_demonstration_class_tree_and_four_tasks_of_one_size():
    """The demo gives every analysis what it needs: a class hierarchy (declared in the study,
    said to be a demonstration, not WordNet) and ≥ 3 supervised tasks of one size whose class
    diversities differ."""
    from collections import Counter

    from taskspace.study.plan import load_hierarchy

    text = (STUDIES / "digits-demo.toml").read_text()
    assert "DEMONSTRATION class hierarchy" in text and "not WordNet" in text
    study = load_study(STUDIES / "digits-demo.toml")
    h = load_hierarchy(study)
    assert h is not None and h.class_names == tuple(str(d) for d in range(10))
    assert "class tree" in h.dataset
    sizes = Counter(
        len(study.tasks[t].classes)
        for t in study.runs["supervised"].tasks
        if study.tasks[t].classes != "all"
    )
    assert max(sizes.values()) >= 3
    D = h.class_distances("path")
    diversity = {
        t: D[np.ix_(c, c)][np.triu_indices(5, 1)].mean()
        for t, c in (
            (t, [int(x) for x in study.tasks[t].classes]) for t in ("low", "high", "even", "odd")
        )
    }
    assert len(set(diversity.values())) > 1


# ------------------------------------------------------------------------------ running
def test_tiny_study_end_to_end_then_skips(tmp_path):
    study = parse_study(doc())
    result = run_study(study, tmp_path, progress=False)
    assert result.trained == 4 and result.skipped == 0
    store = Store.open(tmp_path / "store")
    runs = store.runs("run").set_index("run_id")
    assert set(runs.index) == set(result.run_ids.values())
    ft = runs.loc[result.run_ids["ft/low/seed0/from-all@3"]]
    assert ft["parent_run"] == result.run_ids["sup/all/seed0"] and ft["parent_step"] == 3
    assert list(runs["n_records"]) == [
        3,
        3,
        store.n_records(runs.index[2]),
        store.n_records(runs.index[3]),
    ]
    assert store.trajectory(result.run_ids["sup/all/seed0"]).steps.tolist() == [0, 3, 6]
    t = time.perf_counter()
    again = run_study(study, tmp_path, progress=False)
    assert again.trained == 0 and again.skipped == 4 and again.run_ids == result.run_ids
    assert time.perf_counter() - t < 10
    from taskspace.study import read_study

    assert read_study(tmp_path) == study


def _cifar_pickles(root: Path):
    from taskspace.data import cifar
    from tests.test_data_formats import dump

    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for split, batches in cifar.BATCHES.items():
        for name in batches:
            n = 10 if split == "train" else 20
            labels = [i % 10 for i in range(n)]
            dump(
                folder / name,
                {
                    b"batch_label": name.encode(),
                    b"labels": labels,
                    b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                    b"filenames": [b"x.png"] * n,
                },
                py2=True,
            )
    from taskspace.data.hierarchy import ClassHierarchy

    names = ClassHierarchy.for_dataset("cifar10").class_names
    dump(folder / "batches.meta", {b"label_names": [c.encode() for c in names]}, py2=True)


TINY_RUN = {"steps": 2, "batch_size": 4, "record_schedule": [0, 2], "device": "cpu"}


@pytest.mark.slow
def test_cifar10_study_runs_on_tiny_pickles(tmp_path):
    _cifar_pickles(tmp_path / "data")
    over = {
        "data": {"root": str(tmp_path / "data"), "n_train": 20, "n_imprint": 10, "n_probe": 10},
        "all_runs": {"seeds": [0]},
        "runs": {
            "supervised": {"tasks": ["vehicle"], "config": TINY_RUN},
            "finetune": {"parent_task": "vehicle", "parent_steps": [-1]},
        },
    }
    study = load_study(STUDIES / "cifar10.toml", overrides=over)
    result = run_study(study, tmp_path / "out", only=["supervised"], progress=False)
    runs = Store.open(tmp_path / "out" / "store").runs("run")
    assert result.trained == 1 and list(runs["network"]) == ["resnet18-cifar"]
    assert list(runs["classes"][0]) == ["airplane", "automobile", "ship", "truck"]


def _imagefolder(root: Path, study):
    from PIL import Image

    from taskspace.data.hierarchy import ClassHierarchy

    h = ClassHierarchy.for_dataset("imagenet1k")
    wnids = []
    for spec in study.tasks.values():  # two classes below every node task
        if spec.node is not None:
            below = [h.class_names[c] for c in h.classes_below(h.node_name(spec.node))]
            wnids += [w for w in below if w not in wnids][:2]
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1)):
        for w in wnids:
            (root / split / w).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / w / f"{i}.JPEG")
    return wnids


@pytest.mark.slow
def test_imagenet_study_runs_on_a_tiny_image_folder(tmp_path):
    study = load_study(STUDIES / "imagenet.toml")
    wnids = _imagefolder(tmp_path / "data", study)
    over = {
        "data": {
            "root": str(tmp_path / "data"),
            "options": {"size": 64},
            "n_imprint": 1.0,
            "n_probe": 1.0,
            "n_train": None,
        },
        "tasks": {"random_third": {"k": 3}},
        "all_runs": {"seeds": [0]},
        "runs": {
            "supervised": {"tasks": ["dogs"], "config": {**TINY_RUN, "lr_step_every": 1}},
            "finetune": {"parent_task": "dogs"},
        },
    }
    over["data"]["n_imprint"] = len(wnids)
    study = load_study(STUDIES / "imagenet.toml", overrides=over)
    run_study(study, tmp_path / "out", only=["supervised"], progress=False)
    runs = Store.open(tmp_path / "out" / "store").runs("run")
    assert list(runs["network"]) == ["resnet50"] and len(runs["classes"][0]) == 2


# ------------------------------------------------------------------------------ CLI
def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "taskspace", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.slow
def test_cli_info_and_errors(tmp_path):
    run_study(parse_study(SUP_ONLY), tmp_path, progress=False)
    out = cli("info", tmp_path / "store")
    assert out.returncode == 0, out.stderr
    store = Store.open(tmp_path / "store")
    assert store.probe_hash in out.stdout and store.label_space_hash in out.stdout
    assert "2 runs" in out.stdout and "supervised" in out.stdout
    out = cli("info", tmp_path / "missing")
    assert out.returncode == 1 and "does not exist" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "bad.toml").write_text('name = "x"\ncolour = 3\n')
    out = cli("run", tmp_path / "bad.toml")
    assert out.returncode == 1 and "`colour`" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_cli_import_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    for task, seed in (("a", 0), ("b", 3)):
        P = rng.dirichlet(np.ones(3), size=(4, 6)).astype(np.float32)
        (tmp_path / "preds" / task).mkdir(parents=True)
        with h5py.File(tmp_path / "preds" / task / f"preds_{seed}.h5", "w") as f:
            f.create_dataset("data", data=P)
    np.save(tmp_path / "labels.npy", np.arange(6) % 3)
    (tmp_path / "classes.txt").write_text("x\ny\nz\n")
    out = cli("import-h5", tmp_path / "preds", tmp_path / "s")
    assert out.returncode == 1 and "--labels" in out.stderr
    out = cli(
        "import-h5",
        tmp_path / "preds",
        tmp_path / "s",
        "--labels",
        tmp_path / "labels.npy",
        "--class-names",
        tmp_path / "classes.txt",
    )
    assert out.returncode == 0, out.stderr
    assert sorted(Store.open(tmp_path / "s").run_ids) == [
        "a-supervised-seed0",
        "b-supervised-seed3",
    ]


@pytest.mark.slow
def test_cli_run_quick_then_analyze_and_report(tmp_path):
    (tmp_path / "tiny.toml").write_text("""
name = "tiny"
[data]
dataset = "digits"
n_train = 200
n_imprint = 50
n_probe = 60
[tasks.all]
classes = "all"
[tasks.low]
classes = ["0", "1", "2"]
[runs.sup]
method = "supervised"
tasks = ["all", "low"]
seeds = [0, 1]
network = "mlp"
config = { steps = 20, batch_size = 32, n_records = 4 }
[quick]
all_runs = { seeds = [0], config = { steps = 4 } }
""")
    out = cli("run", tmp_path / "tiny.toml", "--quick", "--out", tmp_path / "o")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "o" / "report.html").is_file() and "report:" in out.stdout
    runs = Store.open(tmp_path / "o" / "store").runs("run")
    assert len(runs) == 2 and set(runs["seed"]) == {0}  # quick: one seed
    assert {c["steps"] for c in runs["config"]} == {4}
    # the analyses left every model's distances in the cache for the commands below
    store = Store.open(tmp_path / "o" / "store")
    assert store.cached_distances().shape == (len(store.runs()),) * 2
    out = cli("analyze", tmp_path / "o" / "store")
    assert out.returncode == 0, out.stderr[-2000:]
    out = cli("report", tmp_path / "o" / "store", "--out", tmp_path / "r.html")
    assert out.returncode == 0 and (tmp_path / "r.html").is_file(), out.stderr[-2000:]


REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
def test_reference_study_quick_on_real_fashion_mnist(tmp_path):
    """`taskspace run studies/fashion-mnist.toml --quick`: what CI runs of the reference study
    (real Fashion-MNIST from Debian's dataset-fashion-mnist; ~5 minutes on two cores)."""
    if not (REAL_FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(
            f"Fashion-MNIST is not installed in {REAL_FASHION} "
            "(apt-get install dataset-fashion-mnist)"
        )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskspace",
            "run",
            STUDIES / "fashion-mnist.toml",
            "--quick",
            "--out",
            tmp_path / "o",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    study = load_study(STUDIES / "fashion-mnist.toml", quick=True)
    store = Store.open(tmp_path / "o" / "store")
    runs = store.runs("run")
    assert len(runs) == sum(
        len(s.tasks) * len(s.seeds) * max(1, len(s.parent_steps or [])) for s in study.runs.values()
    )
    assert set(runs["method"]) == {"supervised", "finetune", "protonet", "simclr", "fixmatch"}
    assert set(runs["seed"]) == {0}
    from taskspace.study.analyses import run_analyses

    results = run_analyses(store, n_boot=20)
    assert all(r.applicable for r in results), [r.finding for r in results if not r.applicable]
    text = " ".join(done.stdout.split())
    assert "report:" in text and (tmp_path / "o" / "report.html").is_file()
    for r in results:
        assert r.title in text  # every finding is printed


@pytest.mark.slow
@pytest.mark.parametrize("columns", [None, "40", "200"])
def test_cli_output_is_never_hard_wrapped_off_a_terminal(tmp_path, columns, monkeypatch):
    # A path far longer than any terminal: every message that names it must stay on one line,
    # and every run id in `info` must appear whole, whatever COLUMNS says.
    deep = tmp_path / ("a-very-long-folder-name-" * 6) / "nested"
    run_study(parse_study(SUP_ONLY), deep, progress=False)
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    missing = deep / "missing"
    out = cli("info", missing)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: store {missing} does not exist"]
    out = cli("info", deep / "store")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"{deep / 'store'}: 2 runs")
    for run_id in Store.open(deep / "store").run_ids:
        assert any(run_id in line for line in out.stdout.splitlines()), run_id
