"""Near-duplicate detection: MinHash signatures (``minhash``), banded LSH (``lsh``), disk-backed clustering over
shards (``cluster``), the persistent MinHash index later versions dedup against (``index``), and the two dedup
stages (``passages``, ``pairs``)."""
