"""Where and how models run, in one place: the device a spelling names, what ``auto`` precision means on a device,
the dtype and the autocast of a precision.

Devices are spelled ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``;
:func:`resolve_device` turns a spelling into a :class:`torch.device` and refuses a CUDA device that is not there.

Precisions are ``auto``, ``bf16``, ``fp16`` (CUDA only) and ``fp32``. On a GPU ``auto`` is bf16 (fp16 where bf16 is
unsupported). On a CPU it is bf16 only where the CPU computes bf16 natively — x86 with AVX-512 BF16 or AMX, Arm with
the BF16 extension — and fp32 elsewhere: without those instructions PyTorch emulates bf16 matrix products and
convolutions, which then run far slower than float32 (measured on a 2-core AMD EPYC with AVX2 only: a
2048×768×3072 linear layer 0.13 s in fp32 against 0.91 s under bf16 autocast; a conv stem on 64 crops 0.6 s against
5–18 s). ``CGCLIP_CPU_BF16=1`` / ``0`` overrides the detection. Training, extraction and evaluation run under the
autocast of a precision (:func:`autocast`); the local captioning back-end loads its model in the precision's dtype
(:func:`precision_dtype`).

This module imports torch only when a function needs it, so the command line can read its vocabulary
(:data:`PRECISIONS`, :func:`check_device`) while it builds its parsers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgclip.errors import ConfigError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: CPU feature flags (``/proc/cpuinfo``) that mean native bf16 arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
ENV_OVERRIDE = "CGCLIP_CPU_BF16"
#: How a device is spelled, for help texts and messages.
DEVICE_SPELLINGS = "auto, cpu, cuda or cuda:N"
#: Other names of the precisions (torch dtype names), accepted where a precision is read.
PRECISION_SYNONYMS = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}
_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")


# ------------------------------------------------------------------------------------------------------- devices
def check_device(spec: str) -> str:
    """``spec`` itself when it spells a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``); else a ConfigError."""
    text = str(spec).strip().lower()
    if not _DEVICE_RE.fullmatch(text):
        raise ConfigError(f"unknown device {spec!r}; use {DEVICE_SPELLINGS}")
    return text


def resolve_device(spec: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """The device ``spec`` names: ``auto`` → CUDA if available, else CPU; ``cuda`` → ``cuda:<local_rank>``
    (the process's GPU under torchrun); ``cuda:N`` as given. Raises ConfigError when CUDA is asked for but absent
    (or ``N`` is past the last GPU) or the spelling is unknown."""
    import torch

    text = check_device(str(spec))
    cuda = torch.cuda.is_available()
    if text == "auto":
        text = "cuda" if cuda else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if not cuda:
        raise ConfigError(f"device {spec!r} needs CUDA, but no CUDA device is available; use auto or cpu")
    count = max(1, torch.cuda.device_count())
    if text == "cuda":
        return torch.device("cuda", local_rank % count)
    index = int(text.split(":")[1])
    if index >= count:
        raise ConfigError(f"device {spec!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


# ---------------------------------------------------------------------------------------------------- precision
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
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def precision_name(value: str) -> str:
    """A precision's canonical name: ``auto``/``bf16``/``fp16``/``fp32``, or a dtype name (``float16``) mapped to it.
    Raises ConfigError for anything else."""
    text = str(value).strip().lower()
    text = PRECISION_SYNONYMS.get(text, text)
    if text not in PRECISIONS:
        raise ConfigError(f"unknown precision {value!r}; use {', '.join(PRECISIONS)}")
    return text


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision to run at on ``device``: ``auto`` → :func:`auto_precision`; ``fp16`` is refused off CUDA."""
    import torch

    name = precision_name(precision)
    device = torch.device(device)
    if name == "auto":
        return auto_precision(device)
    if name == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision {precision!r} needs a CUDA device (the device is {device}); use bf16 or fp32")
    return name


def precision_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a resolved precision (``bf16`` → bfloat16, ``fp16`` → float16, ``fp32`` → float32)."""
    import torch

    name = precision_name(precision)
    if name == "auto":
        raise ConfigError("precision auto has no dtype until it is resolved on a device (resolve_precision)")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def autocast(device: torch.device | str, precision: str = "auto") -> contextlib.AbstractContextManager[Any]:
    """The autocast context for ``precision`` on ``device`` (a no-op for fp32); ``auto`` as :func:`auto_precision`.

    Raises ``ValueError`` for fp16 off CUDA or an unknown precision (callers turn it into their own message).
    """
    import torch

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


def resolve_runtime(
    device: str | torch.device = "auto", precision: str = "auto", local_rank: int = 0
) -> tuple[torch.device, str]:
    """``(resolve_device(device), resolve_precision(precision, that device))``, logged at INFO."""
    dev = resolve_device(device, local_rank)
    prec = resolve_precision(precision, dev)
    log.info("running on %s at %s (asked: device %s, precision %s)", dev, prec, device, precision)
    return dev, prec


__all__ = [
    "BF16_CPU_FLAGS",
    "DEVICE_SPELLINGS",
    "ENV_OVERRIDE",
    "PRECISIONS",
    "auto_precision",
    "autocast",
    "check_device",
    "cpu_has_fast_bf16",
    "precision_dtype",
    "precision_name",
    "resolve_device",
    "resolve_precision",
    "resolve_runtime",
]
