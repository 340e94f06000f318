from __future__ import annotations

from typing import Any

import pytest

from filters.located import check_located
from pairforge.config import FilterConfig

PASSAGE = "赵州桥位于河北省赵县城南的洨河之上。它建于隋朝大业年间，由匠师李春设计建造。这种敞肩拱既减轻了桥身重量，又便于洪水宣泄。"  # noqa: E501
FIRST, SECOND = "赵州桥位于河北省赵县城南的洨河之上。", "它建于隋朝大业年间，由匠师李春设计建造。"
SECOND_SPAN = (len(FIRST), len(FIRST) + len(SECOND))


def sp_pair(sentence: str, method: str | None = "target", span: tuple[int, int] | None = (0, len(FIRST))) -> dict:
    start, end = span if span else (None, None)
    evidence = PASSAGE[start:end] if span else ""
    return {"kind": "sp", "query": sentence, "positive": PASSAGE, "evidence": evidence,
            "evidence_start": start, "evidence_end": end, "evidence_method": method}  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "pair", "reason", "evidence"),
    [
        ({}, sp_pair("赵州桥坐落在河北赵县的洨河上。"), None, (0, len(FIRST), "target")),  # on target
        ({}, sp_pair("赵州桥是隋朝匠师李春设计建造的。"), None, (*SECOND_SPAN, "located")),  # a neighbour: relocated
        ({"locate_evidence": "drop"}, sp_pair("赵州桥是隋朝匠师李春设计建造的。"), "off_target", None),
        # quoted evidence (v1 prompts) was not asked for by the pipeline: moved even under "drop"
        (
            {"locate_evidence": "drop"},
            sp_pair("赵州桥是隋朝匠师李春设计建造的。", "exact"),
            None,
            (*SECOND_SPAN, "located"),
        ),
        ({}, sp_pair("赵州桥是隋朝匠师李春设计建造的。", None, None), None, (*SECOND_SPAN, "located")),  # none yet
        ({}, sp_pair("长城是世界上最长的古代城墙。"), "not_restated", None),
        ({"sp_min_evidence_overlap": 0.0}, sp_pair("长城是世界上最长的古代城墙。"), None, (0, len(FIRST), "target")),
        # off: the recorded evidence is kept and only the overlap with it is checked
        ({"locate_evidence": "off"}, sp_pair("赵州桥是隋朝匠师李春设计建造的。"), "not_restated", None),
        ({"locate_evidence": "off"}, sp_pair("赵州桥坐落在河北赵县的洨河上。"), None, (0, len(FIRST), "target")),
    ],
)
def test_check_located_table(
    settings: dict[str, Any], pair: dict, reason: str | None, evidence: tuple[int, int, str] | None
) -> None:
    assert check_located(pair, FilterConfig.model_validate(settings)) == reason
    if evidence is not None:
        start, end, _ = evidence
        assert (pair["evidence_start"], pair["evidence_end"], pair["evidence_method"]) == evidence
        assert pair["evidence"] == PASSAGE[start:end]


@pytest.mark.parametrize(
    ("query", "method", "settings", "reason"),
    [
        ("赵州桥在哪条河上？", "target", {}, None),  # shares 赵州, 州桥 with its target
        ("李春是哪个朝代的匠师？", "target", {}, "off_target"),  # about the other sentence: nothing shared
        ("李春是哪个朝代的匠师？", "target", {"qp_off_target": False}, None),
        ("李春是哪个朝代的匠师？", "exact", {}, None),  # evidence the model quoted: not a target it was asked about
    ],
)
def test_queries_share_a_bigram_with_their_target(query: str, method: str, settings: dict, reason: str | None) -> None:
    pair = {**sp_pair(query, method), "kind": "qp"}
    assert check_located(pair, FilterConfig.model_validate(settings)) == reason
    assert (pair["evidence_start"], pair["evidence_method"]) == (0, method)  # queries are never relocated
