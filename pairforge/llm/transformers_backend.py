"""Plain transformers ``generate``: the portable fallback (no server, no vLLM, no structured output)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from pairforge.config import GenerateConfig
from pairforge.llm.base import ChatRequest, Completion, DoneFn, collect, stream_in_batches


class TransformersBackend:
    """Static batches with left padding; the chat template comes from the tokenizer."""

    name = "transformers"

    def __init__(self, config: GenerateConfig, model_path: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = getattr(torch, config.transformers.dtype)
        self.device = config.transformers.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = cast(Any, AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype))
        self.model: Any = model.to(self.device)
        self.model.eval()

    def stream(self, requests: Iterable[ChatRequest], on_done: DoneFn) -> None:
        stream_in_batches(self._batch, requests, on_done, self.config.transformers.batch_size)

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return collect(self, requests)

    def _batch(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        s = self.config.sampling
        texts = [
            self.tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        self.torch.manual_seed(s.seed)
        with self.torch.no_grad():
            out = self.model.generate(
                **enc,
                do_sample=s.temperature > 0,
                temperature=s.temperature or None,
                top_p=s.top_p,
                max_new_tokens=s.max_tokens,
                num_return_sequences=s.n,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        prompt_len = enc["input_ids"].shape[1]
        new = out[:, prompt_len:]
        eos = self.tokenizer.eos_token_id
        completions = []
        for i, r in enumerate(requests):
            rows = new[i * s.n : (i + 1) * s.n]
            outputs: list[str] = []
            reasons: list[str] = []
            tokens = 0
            for row in rows:
                ids = _until_eos(row.tolist(), eos, self.tokenizer.pad_token_id)
                tokens += len(ids)
                outputs.append(str(self.tokenizer.decode(ids, skip_special_tokens=True)))
                reasons.append("length" if len(ids) >= s.max_tokens else "stop")
            completions.append(Completion(r.key, outputs, reasons, int(enc["attention_mask"][i].sum()), tokens))
        return completions

    def close(self) -> None:
        self.model = None


def _until_eos(ids: list[int], eos: Any, pad: Any) -> list[int]:
    stops = set(eos if isinstance(eos, list) else [eos]) | {pad}
    for i, token in enumerate(ids):
        if token in stops:
            return ids[:i]
    return ids
