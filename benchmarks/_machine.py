"""What every benchmark prints about the machine it ran on (ratios are only comparable within
one machine, so each result names its CPU)."""

from __future__ import annotations

import platform
from pathlib import Path

ISA_FLAGS = ("avx2", "avx512f", "amx_tile")


def cpu_model(with_isa: bool = False) -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere); with
    ``with_isa``, the vector extensions that decide which kernels run, e.g. ``(avx2, avx512f)``."""
    model, flags = None, []
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value.split()
    except OSError:
        pass
    name = model or platform.processor() or "unknown CPU"
    if not with_isa:
        return name
    return f"{name} ({', '.join(f for f in ISA_FLAGS if f in flags)})"
