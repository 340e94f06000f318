"""The judge stage: an LLM scores every kept pair on a rubric; the cut is a setting re-tunable without requests."""
