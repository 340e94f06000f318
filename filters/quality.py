"""Quality: refusals, prompt-template leftovers, degenerate repetition, questions without content."""

from __future__ import annotations

import itertools
import re
from typing import Any

from pairforge.config import FilterConfig

# Narrower than the parser's refusal pattern: "我不能…" / "我无法…" begin many real search queries.
_REFUSAL = re.compile(r"抱歉|对不起|无法(?:回答|提供|完成)|作为(?:一个)?(?:AI|人工智能)|I'?m sorry|I cannot", re.I)


# Placeholders, schema words and pieces of the prompt's own instructions echoed back; or a leading
# punctuation mark, the sign of a fragment cut out of a longer text.
_LEFTOVER = re.compile(
    r"……|\.\.\.|<\/?passage>|‹/?passage›|问题\s*\d|查询\s*\d|句子\s*\d|query|evidence|factoid|keyword|JSON"
    r"|指令|普通文本|标注|[{}\[\]]|^[，。、；：,.;:!?！？）)]",
    re.I,
)
_CONTENT = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")
# Question shells with nothing to ask about once the question words are removed.
_QUESTION_WORDS = re.compile(
    r"什么|怎么|怎样|如何|为什么|哪些|哪里|哪个|是谁|谁|多少|几|吗|呢|是|的|有|请问|介绍|一下"
)


def check_quality(pair: dict[str, Any], config: FilterConfig) -> str | None:
    """``refusal``, ``template_leftover``, ``repeated_characters``, ``no_content`` or None."""
    query = pair["query"]
    if _REFUSAL.search(query):
        return "refusal"
    if _LEFTOVER.search(query):
        return "template_leftover"
    if max((len(list(run)) for _, run in itertools.groupby(query)), default=0) > config.max_char_run:
        return "repeated_characters"
    if len(_CONTENT.findall(_QUESTION_WORDS.sub("", query))) < 2:
        return "no_content"
    return None
