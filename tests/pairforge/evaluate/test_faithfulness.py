from __future__ import annotations

import pytest

from pairforge.evaluate.faithfulness import score_faithfulness, unfaithful_reason

PASSAGE = "赵州桥位于河北省赵县城南的洨河之上。它建于隋朝大业年间（605年—618年），由匠师李春设计建造。"
FIRST = (0, PASSAGE.index("它"))
SECOND = (FIRST[1], len(PASSAGE))


def sp(sentence: str, span: tuple[int, int] | None = FIRST, evidence: str | None = None) -> dict:
    start, end = span or (None, None)
    return {"kind": "sp", "query": sentence, "positive": PASSAGE, "evidence_start": start, "evidence_end": end,
            "evidence": evidence}  # fmt: skip


def qp(query: str) -> dict:
    return {"kind": "qp", "query": query, "positive": PASSAGE}


@pytest.mark.parametrize(
    ("pair", "reason"),
    [
        (sp("赵州桥坐落在河北赵县的洨河上。"), None),
        (sp("赵州桥坐落在河北赵县的aston河上。"), "unsupported"),  # issue 20's invented word
        (sp("赵州桥是隋朝匠师李春设计建造的。"), "not_restated"),  # restates the other sentence
        (sp("赵州桥是隋朝匠师李春设计建造的。", SECOND), None),  # ... which is its recorded evidence here
        (sp("赵州桥是隋朝匠师李春设计建造的。", None, "它建于隋朝大业年间，由匠师李春设计建造。"), None),
        (sp("赵州桥坐落在河北赵县的洨河上。", None), "not_restated"),  # no evidence recorded
        (sp("赵州桥建于公元605年。", SECOND), None),
        (sp("赵州桥建于公元606年。", SECOND), "unsupported"),
        (qp("赵州桥是谁设计的？"), None),
        (qp("赵州桥是哪一年建成的，620年吗？"), "unsupported"),
        (qp("《赵州桥记》的作者是谁？"), None),  # quoted names are the filter's business, not this score's
    ],
)
def test_unfaithful_reason_table(pair: dict, reason: str | None) -> None:
    assert unfaithful_reason(pair) == reason


def test_score_faithfulness_counts_by_kind() -> None:
    pairs = [sp("赵州桥坐落在河北赵县的洨河上。"), sp("赵州桥是隋朝匠师李春设计建造的。"), qp("赵州桥是谁设计的？"),
             qp("赵州桥是Li Chun设计的吗？")]  # fmt: skip
    score = score_faithfulness(pairs)
    assert (score.pairs, score.faithful) == (4, 2)
    assert score.share("sp") == score.share("qp") == score.share() == 0.5
    assert score.reasons == {"not_restated": 1, "unsupported": 1}
    assert score.share("other") == 0.0 and score_faithfulness([]).share() == 0.0
    assert score_faithfulness(pairs[1:2], min_overlap=0.1).faithful == 1  # 2 of its 14 bigrams are in sentence 0
