"""benchmarks/gpu_check.py, the one-call check of every CUDA path, runs on the CPU at toy
sizes, so that it cannot rot between the sessions that have a GPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu_at_toy_sizes(tmp_path):
    out = tmp_path / "gpu_check.md"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--device",
            "cpu",
            "--toy",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = out.read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    checks = [row.split("|")[1].strip() for row in rows[1:]]
    for expected in (
        "pairwise d_B torch vs CPU, float64",
        "pairwise d_B torch float64 vs LDD bmm",
        "InPCA eigenvalues on device",
        "progress objective on device",
        "train supervised",
        "train protonet",
        "train simclr",
        "train fixmatch",
        "train finetune",
        "Lightning RecorderCallback",
    ):
        assert any(c.startswith(expected) for c in checks), (expected, table)
    assert all(row.rstrip().endswith("| pass |") for row in rows[1:]), table
    assert "device: CPU" in table
