"""``prefetch``: a software prefetch hint for Numba kernels (LLVM's ``llvm.prefetch``).

Used where the hardware prefetchers cannot guess the next address in time: the Gram path packs
one sample's rows, 4 KiB each (C = 1000, float32) and megabytes apart, and a prefetcher does not
follow a stream into the next page. A hint only: it never faults (an address past the array is
harmless), and on a target without such an instruction LLVM drops it.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the cache to fetch the line holding ``array.flat[index]`` (C-contiguous array).

    ``index`` is the flat element offset; read intent, keep in all cache levels.
    """
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        arytype, _ = signature.args
        ary = context.make_array(arytype)(context, builder, args[0])
        base = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
        offset = builder.mul(
            context.cast(builder, args[1], signature.args[1], types.intp),
            context.get_constant(types.intp, arytype.dtype.bitwidth // 8),
        )
        address = builder.gep(base, [offset])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [address, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
