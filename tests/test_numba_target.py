"""512-bit vectors for Numba on AVX-512 hosts (``taskspace.geometry._numba_target``)."""

import json
import os
import subprocess
import sys
import types

import llvmlite.binding as ll
import numpy as np
import pytest

from taskspace.geometry import _numba_target

AVX512 = "+avx512f" in ll.get_host_cpu_features().flatten().split(",")

PROBE = """
import json, re, sys
import numpy as np
import taskspace as ts
from numba.core.registry import cpu_target
from taskspace.geometry import _kernels_pairwise as K, _numba_target
X = np.random.default_rng(0).dirichlet(np.ones(10), size=(20, 40))
D = ts.pairwise_distances(X)
asm = "".join(K.bc_products.inspect_asm().values())
print(json.dumps({"status": _numba_target.STATUS, "D": D.tolist(),
                  "registers": _numba_target.vector_registers(),
                  "features": cpu_target.target_context.codegen()._tm_features,
                  "zmm_fma": len(re.findall(r"vfmadd\\w+\\s+%zmm", asm)),
                  "ymm_fma": len(re.findall(r"vfmadd\\w+\\s+%ymm", asm))}))
"""


def run_probe(tmp_path, **env):
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME", "TASKSPACE_NUMBA_PREFER_256_BIT")
    }
    environ.update(env, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not AVX512, reason="the host has no AVX-512")
def test_512_bit_vectors_on_avx512_hosts_and_opt_out(tmp_path):
    wide = run_probe(tmp_path)
    assert wide["status"] == "applied" and wide["registers"] == 32
    assert wide["features"].endswith(",-prefer-256-bit") and wide["zmm_fma"] > 0
    # same cache directory: the features are part of Numba's cache key, so the 256-bit build
    # is compiled afresh rather than loaded from the 512-bit one
    narrow = run_probe(tmp_path, TASKSPACE_NUMBA_PREFER_256_BIT="1")
    assert narrow["status"] == "opted out"
    assert narrow["registers"] == 32  # 256-bit vectors, but AVX-512's 32 registers still
    # asked for explicitly: LLVM's own tuning prefers 512-bit vectors on some CPUs (Zen 4)
    assert narrow["features"].endswith(",+prefer-256-bit")
    assert narrow["zmm_fma"] == 0 and narrow["ymm_fma"] > 0  # compiled, not loaded
    np.testing.assert_allclose(wide["D"], narrow["D"], rtol=0, atol=1e-14)
    # and the 512-bit build loads from the cache afterwards (no assembly: not compiled again)
    again = run_probe(tmp_path)
    assert again["features"] == wide["features"] and again["zmm_fma"] + again["ymm_fma"] == 0
    assert again["D"] == wide["D"]


@pytest.mark.parametrize(
    ("host", "opted_out", "feature"),
    [
        ("+avx2,+fma,+avx512f,+avx512bw", False, "-prefer-256-bit"),
        ("+avx2,+fma,+avx512f,+avx512bw", True, "+prefer-256-bit"),
        ("+avx2,+fma,-avx512f,-avx512bw", False, None),
        ("+avx2,+fma,-avx512f,-avx512bw", True, None),
        ("+neon", False, None),
    ],
)
def test_vector_width_feature_for_each_kind_of_host(host, opted_out, feature):
    assert _numba_target.vector_width_feature(host, opted_out) == feature


def test_missing_numba_internals_fall_back_to_numba_defaults(monkeypatch):
    """A Numba release that moves the internals used here leaves Numba's own (correct) target."""
    from numba.core import codegen, registry

    monkeypatch.setattr(registry, "cpu_target", types.SimpleNamespace())
    monkeypatch.delattr(codegen, "get_host_cpu_features")
    monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    monkeypatch.delenv("NUMBA_CPU_NAME", raising=False)
    assert _numba_target.prefer_512_bit_vectors() == "numba internals unavailable"
    assert _numba_target.vector_registers.__wrapped__() == (32 if AVX512 else 16)


@pytest.mark.slow
def test_user_settings_are_left_alone(tmp_path):
    features = ll.get_host_cpu_features().flatten()
    got = run_probe(tmp_path, NUMBA_CPU_FEATURES=features)
    assert got["status"] == "user setting" and got["features"] == features
    assert got["registers"] == (32 if AVX512 else 16)


@pytest.mark.slow
def test_register_count_follows_the_compiled_features(tmp_path):
    """Compiled without AVX-512 (whatever the host), the kernels are told of 16 registers and
    give the same distances as the host's own build."""
    host = run_probe(tmp_path / "host")
    features = ",".join(
        f"-{f[1:]}" if f.startswith("+avx512") else f
        for f in ll.get_host_cpu_features().flatten().split(",")
    )
    avx2 = run_probe(tmp_path / "avx2", NUMBA_CPU_FEATURES=features)
    assert avx2["registers"] == 16 and avx2["zmm_fma"] == 0
    np.testing.assert_allclose(avx2["D"], host["D"], rtol=0, atol=1e-14)
