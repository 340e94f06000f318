"""Test tools that ship with pairforge: a fast, deterministic fake OpenAI-compatible LLM server for tests,
benchmarks and dry runs (``pairforge.testing.fake_llm``; ``python -m pairforge.testing.fake_llm --port 0``).

Nothing here is imported by the pipeline itself.
"""
