"""The engine's dtype on the CPU: ``auto`` is bf16 only where the CPU does bf16 natively."""

from __future__ import annotations

from pathlib import Path

import pytest

from pairforge.llm.vllm_backend import cpu_flags, resolve_dtype

AVX2 = {"avx", "avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16", "avx512_vnni"}
AMX = AVX2 | {"avx512f", "amx_bf16", "amx_tile"}


@pytest.mark.parametrize(
    ("requested", "on_cpu", "flags", "expected"),
    [
        ("auto", True, AVX2, "float32"),  # bf16 emulated: float32
        ("auto", True, AVX2 | {"avx512f"}, "float32"),  # AVX512 without its bf16 extension
        ("auto", True, AVX512_BF16, "auto"),  # native bf16: the model's own dtype
        ("auto", True, AMX, "auto"),
        ("auto", True, set(), "float32"),  # flags unknown: the safe choice
        ("bfloat16", True, AVX2, "bfloat16"),  # asked for: kept
        ("float16", True, AVX2, "float16"),
        ("auto", False, set(), "auto"),  # a GPU: vLLM decides
    ],
)
def test_resolve_dtype(requested: str, on_cpu: bool, flags: set[str], expected: str) -> None:
    assert resolve_dtype(requested, on_cpu, flags) == expected


def test_cpu_flags_reads_this_machine() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines() if cpuinfo.exists() else []
    first = next((line for line in lines if line.startswith("flags")), None)  # x86; ARM names them "Features"
    if first is None:
        assert cpu_flags() == set()
    else:
        assert set(first.split(":", 1)[1].split()) <= cpu_flags()
