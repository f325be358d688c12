"""The precision rule: ``auto`` is bf16 on a CPU only where bf16 is native, and one autocast serves every caller."""

from __future__ import annotations

import pytest
import torch

from cgclip import precision
from cgclip.errors import ConfigError
from cgclip.train.extract import autocast_context
from cgclip.train.setup import resolve_precision


@pytest.fixture(autouse=True)
def _fresh_detection(monkeypatch):
    precision.cpu_has_fast_bf16.cache_clear()
    monkeypatch.delenv(precision.ENV_OVERRIDE, raising=False)
    yield
    precision.cpu_has_fast_bf16.cache_clear()


@pytest.mark.parametrize(
    "line, fast",
    [
        ("flags\t\t: fpu sse2 avx avx2 fma", False),  # AVX2 only (AMD EPYC Milan)
        ("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile", True),  # Sapphire Rapids / Zen 4
        ("Features\t: fp asimd sve bf16 i8mm", True),  # Arm with BF16
        ("Features\t: fp asimd", False),
    ],
)
def test_cpu_flags_decide_auto(tmp_path, monkeypatch, line, fast):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\n{line}\n\nprocessor\t: 1\n{line}\n")
    original = precision._cpu_flags
    monkeypatch.setattr(precision, "_cpu_flags", lambda: original(info))
    assert precision.cpu_has_fast_bf16() is fast
    assert precision.auto_precision("cpu") == ("bf16" if fast else "fp32")
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if fast else "fp32")


def test_unreadable_cpuinfo_means_fp32(tmp_path):
    assert precision._cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("value, fast", [("1", True), ("0", False)])
def test_environment_overrides_detection(monkeypatch, value, fast):
    monkeypatch.setenv(precision.ENV_OVERRIDE, value)
    assert precision.cpu_has_fast_bf16() is fast


def test_autocast_contexts():
    assert not isinstance(precision.autocast("cpu", "fp32"), torch.autocast)
    with precision.autocast("cpu", "bf16"):
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="CUDA"):
        precision.autocast("cpu", "fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.autocast("cpu", "half")
    with pytest.raises(ConfigError, match="CUDA"):
        autocast_context(torch.device("cpu"), "fp16")
