"""Hard-negative mining: BM25 (and, later, dense) candidates and their selection."""
