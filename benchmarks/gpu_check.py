"""GPU check (a script, not a test: CI has no GPU). Runs the CUDA paths that CPU tests cannot reach:

1. the ``transformers`` backend on CUDA (its default device there): a left-padded batch gives the same greedy
   tokens as one request at a time (float32), and bf16 throughput;
2. dense mining on CUDA (``mine.dense_device`` unset picks it): a small sentence-transformers model built here
   embeds the same vectors on the GPU as on the CPU, the candidates agree, and GPU encoding throughput.

Every model is built in the script with random weights (nothing is downloaded). Prints ``CHECK`` lines.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pairforge.config import GenerateConfig, RunConfig
from pairforge.llm.base import ChatRequest
from pairforge.llm.transformers_backend import TransformersBackend
from pairforge.negatives.dense import Embedder
from pairforge.negatives.index import dense_device, index_passages
from pairforge.negatives.mine import mine_candidates
from pairforge.workdir import Workdir
from tests.tiny_model import build_tiny_model

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PASSAGE = "长江是中国第一长河，发源于青藏高原，流经十一个省级行政区，最后注入东海。"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def check(name: str, ok: bool, detail: str) -> bool:
    print(f"CHECK {name} {'ok' if ok else 'FAILED'} {detail}", flush=True)
    return ok


def check_transformers(tmp: Path) -> bool:
    model = build_tiny_model(tmp / "tiny-qwen2")
    requests = [
        ChatRequest(f"r{i}", [{"role": "user", "content": PASSAGE[: 8 + 5 * i]}], None) for i in range(6)
    ]  # prompts of different lengths: the batch is left-padded
    sampling = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 24, "seed": 0}
    config = GenerateConfig(backend="transformers", sampling=sampling, transformers={"dtype": "float32"})
    backend = TransformersBackend(config, str(model))
    on_cuda = next(backend.model.parameters()).device.type == "cuda"
    batched = [c.outputs for c in backend.generate(requests)]
    single = [backend.generate([r])[0].outputs for r in requests]
    ok = check("transformers_cuda_default", on_cuda, f"device={backend.device}")
    ok &= check(
        "transformers_batch_equals_single",
        batched == single,
        f"{sum(a == b for a, b in zip(batched, single, strict=True))}/6",
    )
    config = GenerateConfig(
        backend="transformers", sampling=sampling | {"max_tokens": 128}, transformers={"batch_size": 64}
    )
    fast = TransformersBackend(config, str(model))
    many = [ChatRequest(f"b{i}", [{"role": "user", "content": PASSAGE * 4}], None) for i in range(256)]
    fast.generate(many[:64])  # warm-up
    sync()
    start = time.perf_counter()
    tokens = sum(c.tokens_out for c in fast.generate(many))
    sync()
    seconds = time.perf_counter() - start
    check(
        "transformers_bf16_throughput", tokens > 0, f"{tokens / seconds:.0f} tokens/s ({tokens} tokens, 256 requests)"
    )
    return ok


def build_tiny_encoder(folder: Path) -> Path:
    """A 4-layer BERT with a character vocabulary, wrapped as a sentence-transformers model (mean pooling)."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    chars = sorted(set(PASSAGE + "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    (folder / "bert").mkdir(parents=True)
    (folder / "bert" / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "bert" / "vocab.txt")).save_pretrained(folder / "bert")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=512, max_position_embeddings=512)  # fmt: skip
    BertModel(config).save_pretrained(folder / "bert")
    word = models.Transformer(str(folder / "bert"), max_seq_length=256)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(folder / "encoder"))
    return folder / "encoder"


def check_dense(tmp: Path) -> bool:
    encoder = str(build_tiny_encoder(tmp))
    rng = np.random.default_rng(0)
    pool = ["".join(rng.choice(list(PASSAGE), size=int(rng.integers(40, 200)))) for _ in range(2000)]
    gpu, cpu = Embedder(encoder, device=DEVICE), Embedder(encoder, device="cpu")
    a, b = gpu.encode(pool[:256]), cpu.encode(pool[:256])
    cosine = float(np.min(np.sum(a * b, axis=1)))
    ok = check("dense_gpu_equals_cpu", cosine > 0.999, f"min cosine {cosine:.6f} over 256 texts")
    mine = {"retriever": "dense", "dense_model": encoder, "range_max": 10, "relative_margin": None}
    config = RunConfig.model_validate({"name": "gpu-check", "workdir": str(tmp / "w"), "store": str(tmp / "s"),
                                       "corpora": [{"format": "jsonl", "path": str(tmp / "none.jsonl")}],
                                       "mine": mine})  # fmt: skip
    on_cpu_config = config.model_copy(update={"mine": config.mine.model_copy(update={"dense_device": "cpu"})})
    device = dense_device(config)
    ok &= check("dense_default_device", device == "cuda", f"mine.dense_device unset → {device}")
    pairs = [{"pair_id": f"q{i}", "kind": "qp", "query": pool[i][:30], "positive_id": str(i), "positive": pool[i],
              "answers": []}
             for i in range(200)]  # fmt: skip
    ids = [str(i) for i in range(len(pool))]
    candidates = []
    for name, run_config in (("gpu", config), ("cpu", on_cpu_config)):
        workdir = Workdir(tmp / name)
        candidates.append(mine_candidates(pairs, index_passages(run_config, ids, pool, workdir), run_config, workdir))
    on_gpu, on_cpu = candidates
    same = sum(g["dense_ids"][:5] == c["dense_ids"][:5] for g, c in zip(on_gpu, on_cpu, strict=True))
    ok &= check("dense_candidates_gpu_vs_cpu", same >= 190, f"top-5 identical for {same}/200 queries")
    many = pool * 25
    fresh = Embedder(encoder, device=DEVICE, batch_size=256)
    fresh.encode(many[:2048])
    sync()
    start = time.perf_counter()
    fresh.encode([t + str(i) for i, t in enumerate(many)])  # distinct texts: no cache hits
    sync()
    check("dense_gpu_throughput", True, f"{len(many) / (time.perf_counter() - start):.0f} texts/s (4-layer, 256 wide)")
    return ok


def main() -> None:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (a smoke run: CUDA checks fail)"
    print(f"torch {torch.__version__}, {gpu}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ok = check_transformers(Path(tmp))
        ok &= check_dense(Path(tmp))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
