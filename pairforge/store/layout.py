"""Where things are inside a published version (``store/<dataset>/v<N>/``): the folders of the data each segment
contributes, beside the training-format folders (``flagembedding/``, ``sentence-transformers/`` …)."""

from __future__ import annotations

PASSAGES = "data/passages"
PAIRS = "data/pairs"
HUMAN_PAIRS = "data/human_pairs"
CANDIDATES = "data/candidates"
EXAMPLES = "data/examples"
HELDOUT = "data/heldout"  # examples held out of training: the eval split (BEIR files under heldout/)
INDEX = "index/passages"  # one MinHash index part per segment: index/passages/<segment>/
MANIFEST = "manifest.json"
