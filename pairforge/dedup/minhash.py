"""MinHash signatures, computed in bulk with numba, with datasketch's meaning.

Shingles are character n-grams (default 5) or jieba word n-grams. Each shingle gets a 32-bit FNV-1a hash
over its units (code points, or word hashes), then the MurmurHash3 finaliser. Two schemes turn those hashes
into ``num_perm`` coordinates:

- ``affine32`` (default), datasketch 2.0's scheme: coordinate p is the minimum of ``a[p] * h + b[p]`` modulo
  2^32 with ``a`` and ``b`` drawn exactly as datasketch draws them from ``seed``. So a datasketch
  ``MinHash(num_perm, seed, hashfunc=shingle_hash)`` fed the same shingles holds the same signature, bit for bit.
- ``oph``, one-permutation hashing with rounds (Dahlgaard, Knudsen and Thorup's fast similarity sketching,
  the idea behind rensa's R-MinHash): each round drops every shingle into one of ``num_perm`` buckets and keeps
  the smallest value per bucket; rounds repeat (at most 4) while a bucket is empty, and a bucket still empty
  takes the affine32 minimum of its coordinate. Every coordinate stays a min-wise hash (equal with probability
  J), the buckets sample without replacement, so estimates are slightly more accurate, and each shingle costs
  O(1) instead of O(num_perm). Not interchangeable with affine32 signatures.

How the kernel runs near this CPU's limit (AVX-512, 2 cores):
- Texts are read where CPython stores them: each str's 1-, 2- or 4-byte code units are viewed in place
  (numba's own unboxing helper gives the address), never converted to UTF-32 or copied per passage.
- The n-gram hashes of a passage go into a scratch buffer in L1, 16 windows per zmm register (``_fnv16``); the
  next passage's text is prefetched meanwhile.
- affine32 keeps a block of 128 permutations in registers (8 vectors each of a, b and running minima: 24 of the
  32 zmm registers) while it streams the passage's hashes: per shingle one broadcast, then per 16 permutations
  vpmulld, vpaddd, vpminud. LLVM's loop vectoriser stops at 256 bits on Intel AVX-512 parts, so this loop is
  written as explicit 16-lane LLVM IR (``_affine_min``).
- oph computes buckets and values 16 lanes at a time (``_buckets16``) and keeps the minima with scalar stores.
- Passages are spread over the cores with ``numba.prange`` in chunks, scheduled dynamically so a core shared with
  another process does not hold the other one up.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

Scheme = Literal["affine32", "oph"]

FNV_OFFSET = np.uint32(2166136261)
FNV_PRIME = np.uint32(16777619)
EMPTY = np.uint32(0xFFFFFFFF)  # the signature value of an empty set, as in datasketch

_LANES = 16  # uint32 lanes in a 512-bit register
_BLOCK = 8  # vectors of minima kept in registers at once (with their a and b: 24 zmm registers)
_CHUNK = 32  # passages per parallel task; scratch buffers are allocated once per chunk
_ROUNDS = 4  # oph: bucket rounds before an empty bucket falls back to its affine32 minimum
_FRACTION = np.uint64(29)  # oph: value bits below the round number (round r's values are r << 29 | fraction)


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 parameters: odd ``a`` and any ``b``, from ``np.random.RandomState(seed)``."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def shingle_hash(shingle: str | Sequence[str]) -> int:
    """The 32-bit hash of one shingle: a string of characters, or a sequence of words (word n-grams).
    The reference implementation of what the vectorised code computes; datasketch takes it as hashfunc."""
    units = [ord(c) for c in shingle] if isinstance(shingle, str) else [word_hash(w) for w in shingle]
    h = int(FNV_OFFSET)
    for unit in units:
        h = ((h ^ unit) * int(FNV_PRIME)) & 0xFFFFFFFF
    return h


def word_hash(word: str) -> int:
    """A word's 32-bit unit value for word n-grams (FNV-1a over its code points)."""
    return shingle_hash(word)


def char_shingles(text: str, n: int) -> list[str]:
    """The character n-grams of ``text`` (the whole text if shorter than n; none if empty)."""
    if len(text) <= n:
        return [text] if text else []
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def signatures(
    texts: Sequence[str],
    *,
    num_perm: int = 128,
    n: int = 5,
    seed: int = 1,
    tokens: Sequence[Sequence[str]] | None = None,
    scheme: Scheme = "affine32",
) -> np.ndarray:
    """MinHash signatures (len(texts) × num_perm, uint32) of character n-grams of ``texts`` or, when
    ``tokens`` is given, of word n-grams of those token lists (``texts`` is then unused). ``scheme`` is
    ``"affine32"`` (datasketch-identical) or ``"oph"`` (faster, as accurate; see the module docstring).
    Runs on numba's threads (``numba.set_num_threads``); the result does not depend on their number."""
    if num_perm < 1 or n < 1:
        raise ValueError(f"num_perm and n must be positive, got num_perm={num_perm}, n={n}")
    if scheme not in ("affine32", "oph"):
        raise ValueError(f"unknown MinHash scheme {scheme!r}: expected 'affine32' or 'oph'")
    # The views point into the memory of `owner` (the strings, or the word hashes): it lives until we return.
    owner: object
    if tokens is None:
        owner = texts if isinstance(texts, list | tuple) else list(texts)
        views = _string_views(owner)
    else:
        owner, views = _word_views(tokens)
    a, b, salts = _parameters(num_perm, seed)
    if len(views) < 4 * _CHUNK:  # waking the other threads would cost more than they save
        return _signatures_serial(views, n, num_perm, a, b, salts, scheme == "oph")
    with numba.parallel_chunksize(1):  # dynamic scheduling, one chunk of _CHUNK passages at a time
        return _signatures(views, n, num_perm, a, b, salts, scheme == "oph")


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of equal signature positions (datasketch's ``MinHash.jaccard``)."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


@lru_cache(maxsize=16)
def _parameters(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a and b padded with zeros to whole vectors, and the oph round salts (drawn after a and b)."""
    gen = np.random.RandomState(seed)
    gen.randint(0, 1 << 31, num_perm, dtype=np.uint32)
    gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    salts = gen.randint(0, 1 << 32, _ROUNDS, dtype=np.uint32)
    width = -(-num_perm // _LANES) * _LANES
    a, b = (np.zeros(width, dtype=np.uint32) for _ in range(2))
    a[:num_perm], b[:num_perm] = permutations(num_perm, seed)
    for array in (a, b, salts):
        array.flags.writeable = False
    return a, b, salts


def _string_views(strings: Sequence[str]) -> np.ndarray:
    """(address, length, kind) of each string's code units where CPython keeps them (kind = bytes per unit).
    The strings must outlive the views."""
    if not all(issubclass(t, str) for t in set(map(type, strings))):
        bad = next(s for s in strings if not isinstance(s, str))
        raise TypeError(f"MinHash input must be str, got {type(bad).__name__}: {bad!r:.80}")
    views = _extract_views(np.fromiter(map(id, strings), dtype=np.int64, count=len(strings)))
    if len(views) and not views[:, 0].all():
        raise ValueError("a string's buffer could not be read")
    return views


def _word_views(tokens: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Each token list as a run of word hashes (4-byte units) in one array, which the views point into."""
    words = [w for ws in tokens for w in ws]
    units = _word_hashes(_string_views(words))
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.zeros(len(tokens), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    views = np.stack([units.ctypes.data + 4 * starts, lengths, np.full(len(tokens), 4)], axis=1)
    return units, views.astype(np.int64)


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
