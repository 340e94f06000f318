"""A tiny random-weight Qwen2 chat model, built offline in seconds, for exercising the real engines.

hidden 128 / 4 heads gives head_dim 32, which vLLM's CPU attention supports (16 is not)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TRAINING_TEXT = [
    "长江是中国第一长河，发源于青藏高原，注入东海。",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "光合作用是植物利用光能把二氧化碳和水合成有机物的过程。",
    "唐朝是中国历史上国力强盛、文化繁荣的朝代之一。",
    "大熊猫主要生活在四川、陕西和甘肃的山区，以竹子为食。",
    '请只输出JSON：{"queries": [{"type": "factoid", "query": "问题", "evidence": "证据"}]}',
    '{"sentences": [{"sentence": "句子", "evidence": "证据"}]}',
    "The quick brown fox jumps over the lazy dog. 0123456789",
    "查询 问题 证据 段落 关键词 事实 自然 句子 复述 概括 数据 指令",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tiny_tokenizer() -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` (1,000 tokens) trained on a few lines: all the static student
    needs (its ``tokenizer.json``), without importing transformers or torch."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TRAINING_TEXT * 20, trainer)
    return tok


def build_tiny_model(target: Path) -> Path:
    """Write a tokenizer (byte-level BPE trained on a few lines) and a 2-layer random Qwen2 to ``target``."""
    import torch
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    target.mkdir(parents=True, exist_ok=True)
    tok = train_tiny_tokenizer()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    fast.save_pretrained(target)
    vocab = (len(fast) + 63) // 64 * 64
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(target)
    GenerationConfig(eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id).save_pretrained(target)
    (target / "tiny-model.json").write_text(json.dumps({"vocab": vocab}))
    return target


if __name__ == "__main__":
    print(build_tiny_model(Path(sys.argv[1])))
