"""The numba kernels behind ``pairforge.dedup.minhash`` (see its docstring for how they run near the CPU's limit):
the 16-lane LLVM IR intrinsics, the shingle hashing, the affine32 and oph schemes, and the serial and parallel
drivers. Private to that module."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

FNV_OFFSET = np.uint32(2166136261)
FNV_PRIME = np.uint32(16777619)
EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of an empty set, as in datasketch

_LANES = 16  # uint32 lanes in a 512-bit register
_BLOCK = 8  # vectors of minima kept in registers at once (with their a and b: 24 zmm registers)
_CHUNK = 32  # passages per parallel task; scratch buffers are allocated once per chunk
_ROUNDS = 4  # oph: bucket rounds before an empty bucket falls back to its affine32 minimum
_FRACTION = np.uint64(29)  # oph: value bits below the round number (round r's values are r << 29 | fraction)


# ---- Kernels. numba widens uint32 arithmetic to 64 bits, so its results are cast back to uint32 (LLVM then
# narrows the arithmetic again). The hot loops are LLVM IR on <16 x i32> vectors, built by the intrinsics below.


def _vector_type(element: Any = None) -> Any:
    return ir.VectorType(element or ir.IntType(32), _LANES)


def _splat(builder: Any, value: Any) -> Any:
    """A vector with ``value`` (a constant int, or an LLVM scalar) in every lane."""
    if isinstance(value, int):
        return ir.Constant(_vector_type(), [value] * _LANES)
    lanes = builder.insert_element(ir.Constant(_vector_type(value.type), ir.Undefined), value, ir.IntType(32)(0))
    return builder.shuffle_vector(lanes, ir.Constant(lanes.type, ir.Undefined), _splat(builder, 0))


def _lanes_at(builder: Any, pointer: Any, index: Any) -> Any:
    """A pointer to the 16 elements at pointer[index:]."""
    return builder.bitcast(builder.gep(pointer, [index]), _vector_type(pointer.type.pointee).as_pointer())


def _fmix_lanes(builder: Any, h: Any) -> Any:
    """The MurmurHash3 32-bit finaliser on every lane."""
    for shift, factor in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        h = builder.mul(builder.xor(h, builder.lshr(h, _splat(builder, shift))), _splat(builder, factor))
    return builder.xor(h, builder.lshr(h, _splat(builder, 16)))


def _data(context: Any, builder: Any, signature: Any, args: Any, i: int) -> Any:
    return context.make_array(signature.args[i])(context, builder, args[i]).data


@intrinsic
def _unicode_buffer(typingctx: Any, address: Any) -> Any:
    """(data address, length, kind) of the str object at ``address``, from numba's unboxing helper
    ``numba_extract_unicode`` (field reads for a ready string; called with the GIL held)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i8p, i32, i64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)
        fnty = ir.FunctionType(i8p, [i8p, i64.as_pointer(), i32.as_pointer(), i32.as_pointer(), i64.as_pointer()])
        extract = cgutils.get_or_insert_function(builder.module, fnty, "numba_extract_unicode")
        length, kind, is_ascii, hashed = (cgutils.alloca_once(builder, t) for t in (i64, i32, i32, i64))
        data = builder.call(extract, [builder.inttoptr(args[0], i8p), length, kind, is_ascii, hashed])
        values = [builder.ptrtoint(data, i64), builder.load(length), builder.zext(builder.load(kind), i64)]
        return context.make_tuple(builder, signature.return_type, values)

    return types.UniTuple(types.int64, 3)(address), codegen


@intrinsic
def _pointer(typingctx: Any, address: Any, dtype: Any) -> Any:
    """The integer ``address`` as a pointer to ``dtype`` (a numba number class such as ``np.uint16``)."""
    pointer = types.CPointer(dtype.instance_type)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(pointer))

    return pointer(address, dtype), codegen


@intrinsic
def _prefetch(typingctx: Any, address: Any) -> Any:
    """Ask for the cache line at ``address`` (the next passage's text, fetched while this one is hashed)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        prefetch = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(prefetch, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])  # read, keep, data
        return context.get_dummy_value()

    return types.none(address), codegen


@intrinsic
def _fnv16(typingctx: Any, units: Any, start: Any, width: Any, out: Any) -> Any:
    """out[start:start+16] = the hashes of the 16 windows of ``width`` units that begin there: FNV-1a over the
    units (zero-extended to 32 bits), then the MurmurHash3 finaliser, all in one zmm register."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        src, dst = (_data(context, builder, signature, args, i) for i in (0, 3))
        begin, count = args[1], args[2]
        entry = builder.block
        loop, done = builder.append_basic_block("fnv16.loop"), builder.append_basic_block("fnv16.done")
        builder.branch(loop)  # width >= 1
        builder.position_at_end(loop)
        j, h = builder.phi(begin.type), builder.phi(_vector_type())
        unit = builder.load(
            _lanes_at(builder, src, builder.add(begin, j)), align=signature.args[0].dtype.bitwidth // 8
        )
        if unit.type != h.type:
            unit = builder.zext(unit, h.type)
        mixed = builder.mul(builder.xor(h, unit), _splat(builder, int(FNV_PRIME)))
        step = builder.add(j, ir.Constant(begin.type, 1))
        builder.cbranch(builder.icmp_signed("<", step, count), loop, done)
        j.add_incoming(ir.Constant(begin.type, 0), entry)
        j.add_incoming(step, loop)
        h.add_incoming(_splat(builder, int(FNV_OFFSET)), entry)
        h.add_incoming(mixed, loop)
        builder.position_at_end(done)
        builder.store(_fmix_lanes(builder, mixed), _lanes_at(builder, dst, begin), align=4)
        return context.get_dummy_value()

    return types.none(units, start, width, out), codegen


@intrinsic
def _buckets16(
    typingctx: Any, hashes: Any, start: Any, salt: Any, k: Any, prefix: Any, buckets: Any, values: Any
) -> Any:
    """For the 16 hashes at ``start``: g = fmix32(h ^ salt), then Lemire's product g * k gives the bucket (high
    word) and the fraction within it (low word); values = prefix | fraction >> 3 (prefix: the round)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        src, begin = _data(context, builder, signature, args, 0), args[1]
        i32, i64 = ir.IntType(32), ir.IntType(64)
        g = builder.xor(builder.load(_lanes_at(builder, src, begin), align=4), _splat(builder, args[2]))
        wide = builder.zext(_fmix_lanes(builder, g), _vector_type(i64))
        product = builder.mul(wide, _splat(builder, builder.zext(builder.trunc(args[3], i32), i64)))  # vpmuludq
        bucket = builder.trunc(builder.lshr(product, ir.Constant(wide.type, [32] * _LANES)), _vector_type())
        fraction = builder.lshr(builder.trunc(product, _vector_type()), _splat(builder, 32 - int(_FRACTION)))
        for i, vector in ((5, bucket), (6, builder.or_(fraction, _splat(builder, args[4])))):
            builder.store(vector, _lanes_at(builder, _data(context, builder, signature, args, i), begin), align=4)
        return context.get_dummy_value()

    return types.none(hashes, start, salt, k, prefix, buckets, values), codegen


@intrinsic
def _affine_min(typingctx: Any, hashes: Any, count: Any, a: Any, b: Any, out: Any, vectors: Any) -> Any:
    """out[:16v] = min over hashes[:count] of a[:16v] * h + b[:16v] (uint32), for a literal v: the v vectors
    of a, b and minima stay in zmm registers for the whole loop."""
    if not isinstance(vectors, types.IntegerLiteral):
        return None  # numba retries with the literal type
    k = vectors.literal_value

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        hs, av, bv, ov = (_data(context, builder, signature, args, i) for i in (0, 2, 3, 4))
        n = args[1]

        def at(j: int) -> Any:
            return ir.Constant(n.type, _LANES * j)

        coef = [
            (
                builder.load(_lanes_at(builder, av, at(j)), align=4),
                builder.load(_lanes_at(builder, bv, at(j)), align=4),
            )
            for j in range(k)
        ]
        init, entry = _splat(builder, 0xFFFFFFFF), builder.block
        loop, done = builder.append_basic_block("affine_min.loop"), builder.append_basic_block("affine_min.done")
        builder.cbranch(builder.icmp_signed(">", n, at(0)), loop, done)
        builder.position_at_end(loop)
        i, minima = builder.phi(n.type), [builder.phi(init.type) for _ in range(k)]
        h = _splat(builder, builder.load(builder.gep(hs, [i])))
        values = [builder.add(builder.mul(a_j, h), b_j) for a_j, b_j in coef]
        lower = [builder.select(builder.icmp_unsigned("<", v, m), v, m) for v, m in zip(values, minima, strict=True)]
        step = builder.add(i, ir.Constant(n.type, 1))
        builder.cbranch(builder.icmp_signed("<", step, n), loop, done)
        i.add_incoming(at(0), entry)
        i.add_incoming(step, loop)
        for m, v in zip(minima, lower, strict=True):
            m.add_incoming(init, entry)
            m.add_incoming(v, loop)
        builder.position_at_end(done)
        results = [builder.phi(init.type) for _ in range(k)]
        for r, v in zip(results, lower, strict=True):
            r.add_incoming(init, entry)
            r.add_incoming(v, loop)
        for j, r in enumerate(results):
            builder.store(r, _lanes_at(builder, ov, at(j)), align=4)
        return context.get_dummy_value()

    return types.none(hashes, count, a, b, out, vectors), codegen


@numba.njit(cache=True)
def _extract_views(ids: np.ndarray) -> np.ndarray:
    views = np.empty((ids.shape[0], 3), dtype=np.int64)
    for i in range(ids.shape[0]):
        views[i, 0], views[i, 1], views[i, 2] = _unicode_buffer(ids[i])
    return views


@numba.njit(cache=True)
def _word_hashes(views: np.ndarray) -> np.ndarray:
    """word_hash of each viewed string (FNV-1a over its code points)."""
    out = np.empty(views.shape[0], dtype=np.uint32)
    for w in range(views.shape[0]):
        h = FNV_OFFSET
        for i in range(views[w, 1]):
            if views[w, 2] == 1:
                unit = np.uint32(_pointer(views[w, 0], np.uint8)[i])
            elif views[w, 2] == 2:
                unit = np.uint32(_pointer(views[w, 0], np.uint16)[i])
            else:
                unit = _pointer(views[w, 0], np.uint32)[i]
            h = np.uint32((h ^ unit) * FNV_PRIME)
        out[w] = h
    return out


@numba.njit(cache=True, inline="always")
def _fmix32(h: Any) -> Any:
    h = np.uint32(h ^ (h >> np.uint32(16)))
    h = np.uint32(h * np.uint32(0x85EBCA6B))
    h = np.uint32(h ^ (h >> np.uint32(13)))
    h = np.uint32(h * np.uint32(0xC2B2AE35))
    return np.uint32(h ^ (h >> np.uint32(16)))


@numba.njit(cache=True)
def _fnv_windows(units: np.ndarray, n: int, out: np.ndarray) -> int:
    """The hashes of every n-gram of ``units`` (or of all of them, if fewer) into ``out``; returns the count.
    16 windows at a time; the last vector overlaps the one before rather than reading past the end."""
    if units.shape[0] == 0:
        return 0
    width = min(n, units.shape[0])
    count = units.shape[0] - width + 1
    if count < _LANES:
        for i in range(count):
            h = FNV_OFFSET
            for j in range(width):
                h = np.uint32((h ^ np.uint32(units[i + j])) * FNV_PRIME)
            out[i] = _fmix32(h)
        return count
    for p in range(0, count - _LANES + 1, _LANES):
        _fnv16(units, np.int64(p), np.int64(width), out)
    if count % _LANES:
        _fnv16(units, np.int64(count - _LANES), np.int64(width), out)
    return count


@numba.njit(cache=True)
def _shingle_hashes(address: int, length: int, kind: int, n: int, out: np.ndarray) -> int:
    """_fnv_windows over the code units at ``address``, read as 1, 2 or 4 bytes each."""
    if kind == 1:
        return _fnv_windows(numba.carray(_pointer(address, np.uint8), length), n, out)
    if kind == 2:
        return _fnv_windows(numba.carray(_pointer(address, np.uint16), length), n, out)
    return _fnv_windows(numba.carray(_pointer(address, np.uint32), length), n, out)


@numba.njit(cache=True)
def _affine32(hashes: np.ndarray, count: int, a: np.ndarray, b: np.ndarray, sig: np.ndarray) -> None:
    """sig = the affine32 minima, a block of 8 vectors at a time, then 4, 2, 1 for the rest."""
    vectors, p = a.shape[0] // _LANES, 0
    for _ in range(vectors // _BLOCK):
        _affine_min(hashes, count, a[p:], b[p:], sig[p:], 8)
        p += _BLOCK * _LANES
    rest = vectors % _BLOCK
    if rest & 4:
        _affine_min(hashes, count, a[p:], b[p:], sig[p:], 4)
        p += 4 * _LANES
    if rest & 2:
        _affine_min(hashes, count, a[p:], b[p:], sig[p:], 2)
        p += 2 * _LANES
    if rest & 1:
        _affine_min(hashes, count, a[p:], b[p:], sig[p:], 1)


@numba.njit(cache=True)
def _bucket_values(
    hashes: np.ndarray, count: int, salt: Any, k: int, prefix: Any, buckets: np.ndarray, values: np.ndarray
) -> None:
    """_buckets16 over hashes[:count] (the last vector overlapping); one by one below 16 hashes."""
    if count < _LANES:
        for i in range(count):
            product = np.uint64(_fmix32(hashes[i] ^ salt)) * np.uint64(k)
            buckets[i] = np.uint32(product >> np.uint64(32))
            values[i] = prefix | np.uint32(
                np.uint32(product & np.uint64(0xFFFFFFFF)) >> (np.uint32(32) - np.uint32(_FRACTION))
            )
        return
    for p in range(0, count - _LANES + 1, _LANES):
        _buckets16(hashes, np.int64(p), salt, np.int64(k), prefix, buckets, values)
    if count % _LANES:
        _buckets16(hashes, np.int64(count - _LANES), salt, np.int64(k), prefix, buckets, values)


@numba.njit(cache=True)
def _oph(
    hashes: np.ndarray,
    count: int,
    k: int,
    a: np.ndarray,
    b: np.ndarray,
    salts: np.ndarray,
    buckets: np.ndarray,
    values: np.ndarray,
    sig: np.ndarray,
) -> None:
    """sig[:k] = one-permutation hashing with rounds (see the module docstring)."""
    sig[:k] = EMPTY
    if count == 0:
        return
    for r in range(_ROUNDS):
        prefix = np.uint32(np.uint64(r) << _FRACTION)
        _bucket_values(hashes, count, salts[r], k, prefix, buckets, values)
        for i in range(count):
            j = buckets[i]
            if r == 0 or sig[j] >= prefix:  # from round 1 on, only buckets still empty take values
                v, old = values[i], sig[j]
                sig[j] = v if v < old else old
        empty = 0
        for j in range(k):
            empty += sig[j] == EMPTY
        if empty == 0:
            return  # later rounds only offer larger values
    top = np.uint32(np.uint64(_ROUNDS) << _FRACTION)
    for j in range(k):
        if sig[j] == EMPTY:
            m = EMPTY
            for i in range(count):
                m = min(m, np.uint32(a[j] * hashes[i] + b[j]))
            sig[j] = top | np.uint32(m >> (np.uint32(32) - np.uint32(_FRACTION)))


@numba.njit(cache=True)
def _sign_rows(
    views: np.ndarray,
    lo: int,
    hi: int,
    n: int,
    a: np.ndarray,
    b: np.ndarray,
    salts: np.ndarray,
    oph: bool,
    out: np.ndarray,
) -> None:
    """out[lo:hi] = the signatures of passages lo..hi-1, with scratch buffers sized to the longest of them."""
    longest = max(views[lo:hi, 1].max(), _LANES)
    hashes, sig = np.empty(longest, dtype=np.uint32), np.empty(a.shape[0], dtype=np.uint32)
    buckets, values = (
        np.empty(longest if oph else 1, dtype=np.uint32),
        np.empty(longest if oph else 1, dtype=np.uint32),
    )
    for d in range(lo, hi):
        if d + 1 < hi:
            for offset in range(0, min(views[d + 1, 1] * views[d + 1, 2], 4096), 64):
                _prefetch(views[d + 1, 0] + offset)
        count = _shingle_hashes(views[d, 0], views[d, 1], views[d, 2], n, hashes)
        if oph:
            _oph(hashes, count, out.shape[1], a, b, salts, buckets, values, sig)
        else:
            _affine32(hashes, count, a, b, sig)
        out[d] = sig[: out.shape[1]]


@numba.njit(cache=True, parallel=True)
def _signatures(
    views: np.ndarray, n: int, num_perm: int, a: np.ndarray, b: np.ndarray, salts: np.ndarray, oph: bool
) -> np.ndarray:
    docs = views.shape[0]
    out = np.empty((docs, num_perm), dtype=np.uint32)
    for c in numba.prange((docs + _CHUNK - 1) // _CHUNK):
        _sign_rows(views, c * _CHUNK, min(docs, (c + 1) * _CHUNK), n, a, b, salts, oph, out)
    return out


@numba.njit(cache=True)
def _signatures_serial(
    views: np.ndarray, n: int, num_perm: int, a: np.ndarray, b: np.ndarray, salts: np.ndarray, oph: bool
) -> np.ndarray:
    out = np.empty((views.shape[0], num_perm), dtype=np.uint32)
    if views.shape[0]:
        _sign_rows(views, 0, views.shape[0], n, a, b, salts, oph, out)
    return out
