"""False-negative adjudication of mined candidates by an LLM (``mine.adjudicate``)."""
