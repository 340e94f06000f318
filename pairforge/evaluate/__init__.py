"""Evaluation protocols on human-labelled data (the long-text protocol; ``eval retrieval`` lives in negatives)."""

from pairforge.evaluate.longtext import LongTextReport, evaluate_longtext, select_longtext

__all__ = ["LongTextReport", "evaluate_longtext", "select_longtext"]
