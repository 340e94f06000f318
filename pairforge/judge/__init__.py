"""The judge stage: an LLM scores every kept pair on a rubric; the cut is a setting re-tunable without requests."""

from pairforge.judge.stage import run_judge

__all__ = ["run_judge"]
