"""Evaluation: the long-text protocol (``longtext``), retrieval recall and the false negatives a mining policy
picks (``retrieval``), the faithfulness of generated pairs (``faithfulness``) and BEIR-format eval sets (``beir``)."""

from pairforge.evaluate.longtext import LongTextReport, evaluate_longtext, select_longtext

__all__ = ["LongTextReport", "evaluate_longtext", "select_longtext"]
