"""Mixed-precision rules, in one place: what ``auto`` precision means on a device, and the autocast for a precision.

On a GPU ``auto`` is bf16 (fp16 where bf16 is unsupported). On a CPU it is bf16 only where the CPU computes bf16
natively — x86 with AVX-512 BF16 or AMX, Arm with the BF16 extension — and fp32 elsewhere: without those
instructions PyTorch emulates bf16 matrix products and convolutions, which then run far slower than float32
(measured on a 2-core AMD EPYC with AVX2 only: a 2048×768×3072 linear layer 0.13 s in fp32 against 0.91 s under bf16
autocast; a conv stem on 64 crops 0.6 s against 5–18 s). ``CGCLIP_CPU_BF16=1`` / ``0`` overrides the detection.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any

import torch

#: CPU feature flags (``/proc/cpuinfo``) that mean native bf16 arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
ENV_OVERRIDE = "CGCLIP_CPU_BF16"


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The feature flags the first CPU reports (x86 ``flags``, Arm ``Features``); empty where unreadable."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when this CPU computes bf16 natively (or ``CGCLIP_CPU_BF16=1``); False when it would emulate it."""
    override = os.environ.get(ENV_OVERRIDE, "").strip()
    if override in ("0", "1"):
        return override == "1"
    return bool(_cpu_flags() & BF16_CPU_FLAGS)


def auto_precision(device: torch.device | str) -> str:
    """The precision ``auto`` stands for on ``device``: ``bf16``, ``fp16`` (a GPU without bf16) or ``fp32``."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def autocast(device: torch.device | str, precision: str = "auto") -> contextlib.AbstractContextManager[Any]:
    """The autocast context for ``precision`` on ``device`` (a no-op for fp32); ``auto`` as :func:`auto_precision`.

    Raises ``ValueError`` for fp16 off CUDA or an unknown precision (callers turn it into their own message).
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        precision = auto_precision(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
