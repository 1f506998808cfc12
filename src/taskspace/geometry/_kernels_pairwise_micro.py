"""Register-tiled micro-kernels of the pairwise distances, generated per class count and block.

A micro-kernel takes one block of ``L`` samples of ``ROWS`` models of ``A`` and ``COLS`` models
of ``B`` (rows of the blocks layout, ``(n_blocks, TILE, C, L)`` per panel, see
``_kernels_pairwise``, seen as 2-D ``(rows, C·L)``) and, for each of the ``ROWS × COLS`` pairs,
multiplies the product over the block of ``max(BC_n, eps)`` into the pair's running product
(``bc_block``), adds its logarithm (``bc_block_logs``, for absurdly small floors), or adds the sum
over the block of the squared chord ``s_n`` or of the squared angle ``θ_n²`` (``chord_block``).

Why generated code: the loop over samples vectorises only if it is the innermost loop, so the loop
over classes inside it must disappear. LLVM unrolls a constant-trip loop only below a size threshold
(a register-tiled chord body stops unrolling at C ≈ 8, silently turning the kernel scalar), so the
class loop is written out here instead: ``numba.extending.overload`` picks, at typing time, a
Python source generated for the class count and the block length (the lengths of the ``classes``
and ``lanes`` tuple arguments): with both known, every load is a base register plus the sample
index plus a literal offset, and the sample loop has a known trip count. The callers are
``cache=True`` and their compiled code (this included) is cached like any other.

Note for editing: Numba checks only the caller's source file to invalidate its cache, so after a
change here update this file's digest in ``_kernels_pairwise.CALLEE_DIGESTS`` (a test fails until
then, and that edit invalidates the cache).
"""

from __future__ import annotations

import functools
import math

from numba import types
from numba.extending import overload

#: The register tile: ROWS × COLS pairs, ROWS + COLS vector loads per ROWS·COLS multiply-adds.
#: 3 × 3 keeps 9 inner products, 9 running products and 6 loaded vectors in registers (25 of the
#: 32 of AVX-512); 4 × 3 needed 31 and spilled 7 of its products to the stack on every sample
#: (read in ``bc_products.inspect_asm()``).
ROWS, COLS = 3, 3
#: Running products are kept ≥ SMALLEST_KEPT by exact rescaling (``_kernels_pairwise``).
SMALLEST_KEPT = 2.0**-65
RESCALE = 2.0**960
LOG_RESCALE = 960.0 * math.log(2.0)
FASTMATH = {"reassoc", "contract", "nsz"}

# fdlibm e_asin.c: asin(y) = y + y·R(y²) on [0, 0.5], R(t) = t·P(t)/Q(t); for y in (0.5, √½]
# asin(y) = π/2 − 2·asin(sqrt((1 − y)/2)). Written branch-free (selects) so that it vectorises.
_ASIN_P = (
    1.66666666666666657415e-01,
    -3.25565818622400915405e-01,
    2.01212532134862925881e-01,
    -4.00555345006794114027e-02,
    7.91534994289814532176e-04,
    3.47933107596021167570e-05,
)
_ASIN_Q = (
    -2.40339491173441421878e00,
    2.02094576023350569471e00,
    -6.88283971605453293030e-01,
    7.70381505559019352791e-02,
)


def bc_block(A, B, ra, rb, classes, lanes, eps, mant, out, a, b):
    """``mant[a + r, b + s] *= Π max(BC_n, eps)`` over one block, for the ROWS × COLS pairs.

    A product that falls below ``SMALLEST_KEPT`` is multiplied by ``RESCALE`` (exactly: a power
    of two) and ``LOG_RESCALE`` is taken off ``out[a + r, b + s]`` (pairs inside ``out`` only;
    padding pairs are rescaled too, so that they never become subnormal and slow).

    ``A`` and ``B`` are 2-D views ``(rows, C_spec·L)`` of the blocks layout: row ``ra + r`` of
    ``A`` holds one model's block, class-major (``A[ra + r, c·L + n]``). ``classes`` and
    ``lanes`` are tuples whose lengths are C_spec and L (compile-time constants of the code).
    """
    raise NotImplementedError("compiled only (numba overload)")


def bc_block_logs(A, B, ra, rb, classes, lanes, eps, out, a, b):
    """As :func:`bc_block`, but ``out[a + r, b + s] += log Π max(BC_n, eps)`` (pairs in ``out``)."""
    raise NotImplementedError("compiled only (numba overload)")


def chord_block(A, B, ra, rb, classes, lanes, geodesic, out, a, b):
    """``out[a + r, b + s] += Σ_n s_n`` (or ``θ_n²``) over one block (pairs inside ``out``)."""
    raise NotImplementedError("compiled only (numba overload)")


def theta_squared_source(s: str, out: str) -> list[str]:
    """Statements computing ``out = θ²``, ``θ = 2·asin(sqrt(s)/2)``, from the chord ``s``.

    Branch-free: with x = sqrt(s)/2, ``min(x², (1 − x)/2)`` is x² exactly when x ≤ 1/2 and
    (1 − x)/2 otherwise, and the two results are blended by a 0/1 factor.
    """
    p0, p1, p2, p3, p4, p5 = (repr(v) for v in _ASIN_P)
    q1, q2, q3, q4 = (repr(v) for v in _ASIN_Q)
    return [
        f"x = min(math.sqrt({s}) * 0.5, {math.sqrt(0.5)!r})",
        "big = (x > 0.5) * 1.0",
        "t = min(x * x, (1.0 - x) * 0.5)",
        "y = math.sqrt(t)",
        f"num = t * ({p0} + t * ({p1} + t * ({p2} + t * ({p3} + t * ({p4} + t * {p5})))))",
        f"den = 1.0 + t * ({q1} + t * ({q2} + t * ({q3} + t * {q4})))",
        "r = y + y * (num / den)",
        f"h = r + big * ({math.pi / 2!r} - 3.0 * r)",
        f"{out} = 4.0 * h * h",
    ]


def _pairs():
    return [(r, s) for r in range(ROWS) for s in range(COLS)]


def _class_lines(n_classes: int, n_lanes: int, chord: bool) -> list[str]:
    """The unrolled class loop: ``acc_rs`` = Σ_c a_rc·b_sc, or Σ_c (a_rc − b_sc)².

    The column offsets ``c·L`` are literals, so every load is one base register (per row) plus
    the sample index plus a constant.
    """
    lines = []
    for c in range(n_classes):
        lines += [f"a{r} = A[ra + {r}, {c * n_lanes} + n]" for r in range(ROWS)]
        lines += [f"b{s} = B[rb + {s}, {c * n_lanes} + n]" for s in range(COLS)]
        for r, s in _pairs():
            op = "=" if c == 0 else "+="
            if chord:
                lines += [f"d = a{r} - b{s}", f"acc{r}{s} {op} d * d"]
            else:
                lines.append(f"acc{r}{s} {op} a{r} * b{s}")
    return lines


def _indent(lines, depth):
    return ["    " * depth + line for line in lines]


def _bounded(lines_of_pair):
    """Statements for each pair, guarded by ``out``'s shape (padding pairs are never written)."""
    body = ["n_rows, n_cols = out.shape"]
    for r, s in _pairs():
        body += [f"if a + {r} < n_rows and b + {s} < n_cols:"]
        body += _indent(lines_of_pair(r, s), 1)
    return body


@functools.cache
def _generate(kind: str, n_classes: int, n_lanes: int):
    pairs = _pairs()
    loop = [f"for n in range({n_lanes}):"]
    if kind in ("bc", "bc_logs"):
        target = "mant, out" if kind == "bc" else "out"
        body = [f"def kernel(A, B, ra, rb, classes, lanes, eps, {target}, a, b):"]
        body += _indent([f"v{r}{s} = 1.0" for r, s in pairs], 1)
        body += _indent(loop, 1)
        body += _indent(_class_lines(n_classes, n_lanes, chord=False), 2)
        body += _indent([f"v{r}{s} *= max(acc{r}{s}, eps)" for r, s in pairs], 2)
        if kind == "bc":
            # Rescaling is rare (a product rescaled by 2^960 takes dozens of blocks to fall
            # below 2^-65 again), so a branch costs less than a pass over every pair.
            body += _indent(["n_rows, n_cols = out.shape"], 1)
            for r, s in pairs:
                body += _indent(
                    [
                        f"m = mant[a + {r}, b + {s}] * v{r}{s}",
                        f"if m < {SMALLEST_KEPT!r}:",
                        f"    m *= {RESCALE!r}",
                        f"    if a + {r} < n_rows and b + {s} < n_cols:",
                        f"        out[a + {r}, b + {s}] -= {LOG_RESCALE!r}",
                        f"mant[a + {r}, b + {s}] = m",
                    ],
                    1,
                )
        else:
            body += _indent(
                _bounded(lambda r, s: [f"out[a + {r}, b + {s}] += math.log(v{r}{s})"]), 1
            )
    else:
        body = ["def kernel(A, B, ra, rb, classes, lanes, geodesic, out, a, b):"]
        body += _indent([f"v{r}{s} = 0.0" for r, s in pairs], 1)
        # Two copies of the sample loop, so that neither carries a branch.
        body += _indent(["if geodesic:", "    " + loop[0]], 1)
        body += _indent(_class_lines(n_classes, n_lanes, chord=True), 3)
        for r, s in pairs:
            body += _indent(theta_squared_source(f"acc{r}{s}", "q"), 3)
            body += _indent([f"v{r}{s} += q"], 3)
        body += _indent(["else:", "    " + loop[0]], 1)
        body += _indent(_class_lines(n_classes, n_lanes, chord=True), 3)
        body += _indent([f"v{r}{s} += acc{r}{s}" for r, s in pairs], 3)
        body += _indent(_bounded(lambda r, s: [f"out[a + {r}, b + {s}] += v{r}{s}"]), 1)
    namespace = {"math": math}
    code = compile(
        "\n".join(body), f"<pairwise micro-kernel {kind} C={n_classes} L={n_lanes}>", "exec"
    )
    exec(code, namespace)
    return namespace["kernel"]


def _counts(classes, lanes):
    if isinstance(classes, types.UniTuple) and isinstance(lanes, types.UniTuple):
        return classes.count, lanes.count
    return None


_JIT = {"fastmath": FASTMATH, "error_model": "numpy"}


@overload(bc_block, jit_options=_JIT, inline="always")
def _bc_block_overload(A, B, ra, rb, classes, lanes, eps, mant, out, a, b):
    counts = _counts(classes, lanes)
    return None if counts is None else _generate("bc", *counts)


@overload(bc_block_logs, jit_options=_JIT, inline="always")
def _bc_block_logs_overload(A, B, ra, rb, classes, lanes, eps, out, a, b):
    counts = _counts(classes, lanes)
    return None if counts is None else _generate("bc_logs", *counts)


@overload(chord_block, jit_options=_JIT, inline="always")
def _chord_block_overload(A, B, ra, rb, classes, lanes, geodesic, out, a, b):
    counts = _counts(classes, lanes)
    return None if counts is None else _generate("chord", *counts)
