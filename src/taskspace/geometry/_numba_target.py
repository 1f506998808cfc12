"""Choose the vector width LLVM uses in Numba code on AVX-512 machines (docs/decisions.md).

LLVM tunes most Intel AVX-512 processors with ``prefer-256-bit``: its vectorisers then emit only
256-bit (ymm) instructions, and the pairwise micro-kernels run at half the FMA width of the
machine (108 ymm FMAs in ``bc_products``, none on zmm; with ``-prefer-256-bit`` the same 108 FMAs
on zmm registers). Its tuning for AMD Zen 4 does not set ``prefer-256-bit``: there 512-bit code is
what LLVM emits anyway. Numba takes the target's features once, when it creates its CPU code
generator (at the first compilation or cache load in the process), from
``numba.config.CPU_FEATURES`` or else the host's. So, on import of ``taskspace.geometry``, if the
host has AVX-512, the user has set neither ``NUMBA_CPU_FEATURES`` nor ``NUMBA_CPU_NAME`` and the
code generator does not exist yet, create it now with the host's features plus

* ``-prefer-256-bit`` (512-bit vectors, on every AVX-512 CPU), or
* ``+prefer-256-bit`` when ``TASKSPACE_NUMBA_PREFER_256_BIT=1`` opts out: 256-bit vectors on
  every AVX-512 CPU, whatever LLVM's own tuning for it would have chosen;

then put ``config.CPU_FEATURES`` back as it was (the code generator keeps its own copy, and no
environment variable is set, so subprocesses and Dask workers on other machines detect their own
CPU). Elsewhere change nothing. The features are part of Numba's cache key
(``CPUCodegen.magic_tuple``), so ``cache=True`` entries compiled with either setting never mix.
Other Numba code in the same process gets the same vector width when taskspace is imported first.

This reaches into Numba's internals (``registry.cpu_target``, ``codegen``); if a Numba release
moves them, :func:`prefer_512_bit_vectors` reports ``"numba internals unavailable"`` and Numba
runs with its own defaults, which are correct, only possibly narrower.

:func:`vector_registers` tells the kernels how many vector registers that target has.
"""

from __future__ import annotations

import functools
import os

OPT_OUT = "TASKSPACE_NUMBA_PREFER_256_BIT"


def vector_width_feature(host_features: str, opted_out: bool) -> str | None:
    """The LLVM feature to add to the host's, or ``None`` to leave Numba's default alone.

    Parameters
    ----------
    host_features : str
        Comma-separated LLVM features of the host, e.g. ``"+avx2,+avx512f,..."``.
    opted_out : bool
        Whether the user asked for 256-bit vectors (``TASKSPACE_NUMBA_PREFER_256_BIT=1``).

    Returns
    -------
    str or None
        ``"-prefer-256-bit"`` (512-bit vectors) or ``"+prefer-256-bit"`` (256-bit vectors, asked
        for explicitly since LLVM's tuning for some AVX-512 CPUs, e.g. Zen 4, does not prefer
        them) on AVX-512 hosts; ``None`` without AVX-512, where vectors are 256-bit at most.
    """
    if "+avx512f" not in host_features.split(","):
        return None
    return "+prefer-256-bit" if opted_out else "-prefer-256-bit"


def prefer_512_bit_vectors() -> str:
    """Create Numba's CPU code generator with the chosen vector width where that is safe.

    Returns
    -------
    str
        What was done: ``"applied"`` (512-bit), ``"opted out"`` (256-bit asked for explicitly),
        or why nothing was done (``"user setting"``, ``"already initialised"``, ``"no AVX-512"``,
        ``"numba internals unavailable"``).
    """
    opted_out = os.environ.get(OPT_OUT, "") not in ("", "0")
    try:
        from numba.core import codegen, config, registry

        if (
            config.CPU_FEATURES is not None
            or config.CPU_NAME is not None
            or "NUMBA_CPU_FEATURES" in os.environ
            or "NUMBA_CPU_NAME" in os.environ
        ):
            return "user setting"
        if "_toplevel_target_context" in vars(registry.cpu_target):
            return "already initialised"
        features = codegen.get_host_cpu_features()  # honours NUMBA_ENABLE_AVX=0
        feature = vector_width_feature(features, opted_out)
        if feature is None:
            return "no AVX-512"
        config.CPU_FEATURES = f"{features},{feature}"
        try:
            registry.cpu_target.target_context  # noqa: B018 - creates the code generator now
        finally:
            config.CPU_FEATURES = None
    except (ImportError, AttributeError, TypeError):
        return "numba internals unavailable"
    return "opted out" if opted_out else "applied"


STATUS = prefer_512_bit_vectors()


@functools.cache
def vector_registers() -> int:
    """Vector registers of the instruction set Numba compiles for: 32 with AVX-512, else 16.

    The kernels choose code by it (``_pairwise_blas.gram_kernel``, ``_kernels_pairwise.root_as``):
    a register tile sized for 32 registers spills on AVX2 machines, where OpenBLAS's own kernel
    is faster. Read from the features of Numba's code generator (created here if need be), which
    are also part of its cache key, so the choice always matches the code that runs; from the
    host's features where Numba's internals cannot be read.
    """
    features = None
    try:
        from numba.core import codegen, config, registry

        generator = registry.cpu_target.target_context.codegen()
        features = getattr(generator, "_tm_features", None)  # Numba's own; else as Numba derives it
        if features is None:
            features = config.CPU_FEATURES or codegen.get_host_cpu_features()
    except (ImportError, AttributeError, TypeError):
        import llvmlite.binding as ll

        features = ll.get_host_cpu_features().flatten()
    return 32 if "+avx512f" in features.split(",") else 16
