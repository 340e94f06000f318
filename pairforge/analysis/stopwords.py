"""The function words BM25 terms leave out, apart from the tokenizer so ``terms`` (which needs them) and ``analyze``
(which needs the tokenizer, which needs ``terms``) import them without a circle.

Measured on CMRC 2018 dev (848 paragraphs, 3,219 questions), BM25 recall@5 of the gold paragraph with jieba terms:
0.990 without punctuation, 0.992 also without these words."""

from __future__ import annotations

# particles, conjunctions and question words: frequent in questions, no help in finding the paragraph
_FUNCTION_WORDS = "的 了 是 在 和 与 及 或 也 都 而 被 把 对 为 从 以 之 其 这 那 有 "
_QUESTION_WORDS = "什么 哪 哪个 哪些 哪里 多少 几 怎么 怎样 如何 为什么 吗 呢 谁 何 是否 请问"
STOPWORDS = frozenset((_FUNCTION_WORDS + _QUESTION_WORDS).split(" "))
