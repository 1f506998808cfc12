"""Let LLVM use 512-bit vectors in Numba code on AVX-512 machines (docs/decisions.md).

LLVM tunes most Intel AVX-512 processors with ``prefer-256-bit``: its vectorisers then emit only
256-bit (ymm) instructions, and the pairwise micro-kernels run at half the FMA width of the
machine (read in ``bc_products.inspect_asm()``: 108 ymm FMAs, no zmm; with ``-prefer-256-bit``
the same 108 FMAs on zmm registers). Numba takes the target's features once, when it creates
its CPU code generator (at the first compilation or cache load in the process), from
``numba.config.CPU_FEATURES`` or else the host's. So, on import of ``taskspace.geometry``:

* if the host has AVX-512, the user has set neither ``NUMBA_CPU_FEATURES`` nor
  ``NUMBA_CPU_NAME`` and the code generator does not exist yet, create it now with the host's
  features plus ``-prefer-256-bit`` (then put ``config.CPU_FEATURES`` back as it was: the code
  generator keeps its own copy, and no environment variable is set, so subprocesses and Dask
  workers on other machines detect their own CPU);
* otherwise change nothing. ``TASKSPACE_NUMBA_PREFER_256_BIT=1`` opts out.

The features are part of Numba's cache key (``CPUCodegen.magic_tuple``), so ``cache=True``
entries compiled with and without the setting never mix. Other Numba code in the same process
gets 512-bit vectors too when taskspace is imported first.

:func:`vector_registers` tells the kernels how many vector registers that target has.
"""

from __future__ import annotations

import functools
import os

OPT_OUT = "TASKSPACE_NUMBA_PREFER_256_BIT"


def prefer_512_bit_vectors() -> str:
    """Create Numba's CPU code generator without ``prefer-256-bit`` where that is safe.

    Returns
    -------
    str
        What was done: ``"applied"``, or why not (``"opted out"``, ``"user setting"``,
        ``"already initialised"``, ``"no AVX-512"``).
    """
    if os.environ.get(OPT_OUT, "") not in ("", "0"):
        return "opted out"
    from numba.core import codegen, config, registry

    if (config.CPU_FEATURES is not None or config.CPU_NAME is not None
            or "NUMBA_CPU_FEATURES" in os.environ or "NUMBA_CPU_NAME" in os.environ):
        return "user setting"
    if "_toplevel_target_context" in vars(registry.cpu_target):
        return "already initialised"
    features = codegen.get_host_cpu_features()  # honours NUMBA_ENABLE_AVX=0
    if "+avx512f" not in features.split(","):
        return "no AVX-512"
    config.CPU_FEATURES = features + ",-prefer-256-bit"
    try:
        registry.cpu_target.target_context  # noqa: B018 - creates the code generator now
    finally:
        config.CPU_FEATURES = None
    return "applied"


STATUS = prefer_512_bit_vectors()


@functools.cache
def vector_registers() -> int:
    """Vector registers of the instruction set Numba compiles for: 32 with AVX-512, else 16.

    The kernels choose code by it (``_pairwise_blas.gram_kernel``, ``_kernels_pairwise.root_as``):
    a register tile sized for 32 registers spills on AVX2 machines, where OpenBLAS's own kernel
    is faster. Read from the features of Numba's code generator (created here if need be), which
    are also part of its cache key, so the choice always matches the code that runs.
    """
    from numba.core import codegen, config, registry

    generator = registry.cpu_target.target_context.codegen()
    features = getattr(generator, "_tm_features", None)  # Numba's own; else as Numba derives it
    if features is None:
        features = config.CPU_FEATURES or codegen.get_host_cpu_features()
    return 32 if "+avx512f" in features.split(",") else 16
