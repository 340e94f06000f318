"""The vectorised MinHash kernel: every CPython string layout, vector boundaries, threads, and the oph scheme."""

from __future__ import annotations

import random
from pathlib import Path

import numba
import numpy as np
import pytest
from datasketch import MinHash
from pydantic import ValidationError

from pairforge.config import DedupConfig
from pairforge.dedup.minhash import EMPTY, char_shingles, estimate_jaccard, shingle_hash, signatures
from tests.pairforge.dedup.planted import exact_jaccard, planted_set, real_passages


def _datasketch(shingles: list, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    reference = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
    reference.update_batch(shingles)
    return reference.hashvalues


# Lengths around the 16-lane vectors (15, 16, 17 ... shingles) in each of CPython's layouts: ASCII, Latin-1
# (1 byte), BMP (2 bytes), astral (4 bytes); one mixes layouts inside the text.
_ALPHABETS = {"ascii": "abcdefgh", "latin1": "éüñøß", "bmp": "长江黄河是的", "astral": "𠀀𠀁𠀂𡃁", "mixed": "a长𠀀é"}


@pytest.mark.parametrize("alphabet", list(_ALPHABETS))
def test_every_string_layout_and_length_equals_datasketch(alphabet: str) -> None:
    rng = random.Random(alphabet)
    lengths = [0, 1, 4, 5, 6, 19, 20, 21, 22, 36, 37, 38, 100, 613]
    texts = ["".join(rng.choice(_ALPHABETS[alphabet]) for _ in range(k)) for k in lengths]
    for text, sig in zip(texts, signatures(texts), strict=True):
        assert np.array_equal(sig, _datasketch(char_shingles(text, 5))), (alphabet, len(text))


@pytest.mark.parametrize(("num_perm", "n", "seed"), [(1, 5, 1), (17, 3, 2), (200, 5, 7), (256, 1, 3)])
def test_any_num_perm_equals_datasketch(shared_data: Path, num_perm: int, n: int, seed: int) -> None:
    texts = real_passages(shared_data, 6)
    for text, sig in zip(texts, signatures(texts, num_perm=num_perm, n=n, seed=seed), strict=True):
        assert np.array_equal(sig, _datasketch(char_shingles(text, n), num_perm, seed))


def test_word_ngrams_of_any_length_equal_datasketch() -> None:
    tokens = [[], ["长江"], ["长江", "是", "𠀀字", "第一", "long", "é"], ["的"] * 3 + ["中国", "北京"] * 9]
    for words, sig in zip(tokens, signatures([""] * len(tokens), n=2, tokens=tokens), strict=True):
        shingles = [tuple(words[i : i + 2]) for i in range(max(len(words) - 1, 1))] if words else []
        assert np.array_equal(sig, _datasketch(shingles)), words


def test_empty_inputs() -> None:
    assert signatures([]).shape == (0, 128)
    assert signatures([], tokens=[]).shape == (0, 128)
    for scheme in ("affine32", "oph"):
        sig = signatures(["", "x"], num_perm=64, scheme=scheme)
        assert sig.dtype == np.uint32 and sig.shape == (2, 64)
        assert (sig[0] == EMPTY).all() and (sig[1] != EMPTY).all()


@pytest.mark.parametrize("scheme", ["affine32", "oph"])
def test_threads_give_the_same_signatures(shared_data: Path, scheme: str) -> None:
    texts = real_passages(shared_data, 300)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = signatures(texts, scheme=scheme)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = signatures(texts, scheme=scheme)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, two)
    small_batches = np.vstack([signatures(texts[i : i + 50], scheme=scheme) for i in range(0, 300, 50)])
    assert np.array_equal(one, small_batches)  # batches under 128 passages take the serial kernel


def test_str_subclasses_and_tuples_are_read_in_place() -> None:
    class Text(str):
        pass

    texts = ("长江是中国第一长河", Text("长江是中国第一长河"))
    sigs = signatures(texts)
    assert np.array_equal(sigs[0], sigs[1])


def test_bad_input_is_refused() -> None:
    with pytest.raises(TypeError, match="must be str"):
        signatures(["长江", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="scheme"):
        signatures(["长江"], scheme="minhash")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        signatures(["长江"], n=0)


def test_oph_tracks_exact_jaccard_at_least_as_well_as_affine32(shared_data: Path) -> None:
    texts = planted_set(shared_data, 400)  # 200 near copies (J ~0.9), 100 far variants (J ~0.45)
    pairs = range(300)
    exact = np.array([exact_jaccard(texts[i], texts[400 + i]) for i in pairs])
    errors = {}
    for scheme in ("affine32", "oph"):
        error = 0.0
        for seed in (1, 2, 3):
            sigs = signatures(texts, scheme=scheme, seed=seed)
            estimates = np.array([estimate_jaccard(sigs[i], sigs[400 + i]) for i in pairs])
            error += np.abs(estimates - exact).mean() / 3
        errors[scheme] = error
    # Sampling without replacement: oph's error is below the ideal 128-permutation MinHash's, not above.
    assert errors["oph"] < 0.035 and errors["oph"] <= errors["affine32"] * 1.05, errors


@pytest.mark.parametrize("size", [6, 40, 400])
def test_oph_is_unbiased_for_small_and_large_sets(size: int) -> None:
    """Sets of `size` words sharing half: J = 1/3. Small sets take most coordinates from the fallback."""
    rng = random.Random(size)
    pairs, estimates = 60, []
    for p in range(pairs):
        words = [f"w{p}-{rng.random()}" for _ in range(size * 3 // 2)]
        left, right = words[:size], words[size // 2 :]
        sigs = signatures(["", ""], n=1, tokens=[left, right], scheme="oph", seed=p + 1)
        estimates.append(estimate_jaccard(sigs[0], sigs[1]))
    assert abs(np.mean(estimates) - 1 / 3) < 0.02, np.mean(estimates)


def test_oph_signatures_depend_on_seed_and_text_only() -> None:
    text = "长江是中国第一长河，黄河是中国第二长河。" * 5
    first = signatures([text, text + "。"], scheme="oph", seed=1)
    assert np.array_equal(first[0], signatures([text], scheme="oph", seed=1)[0])
    assert not np.array_equal(first[0], signatures([text], scheme="oph", seed=2)[0])
    assert estimate_jaccard(first[0], first[1]) > 0.8


def test_dedup_config_names_the_scheme() -> None:
    assert DedupConfig().scheme == "affine32" and DedupConfig(scheme="oph").scheme == "oph"
    with pytest.raises(ValidationError):
        DedupConfig(scheme="rensa")  # type: ignore[arg-type]
