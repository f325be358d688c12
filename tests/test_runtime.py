"""One runtime module: the device a spelling names and one meaning of ``auto`` precision, for every caller."""

from __future__ import annotations

import warnings

import pytest
import torch

from cgclip import runtime
from cgclip.errors import ConfigError


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch):
    """Pretend this machine has ``n`` CUDA devices (without bf16); returns the setter."""

    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)

    return have


def test_device_spellings(cuda) -> None:
    cuda(0)
    assert runtime.resolve_device("auto") == torch.device("cpu")
    assert runtime.resolve_device("cpu") == runtime.resolve_device(torch.device("cpu")) == torch.device("cpu")
    cuda(2)
    assert runtime.resolve_device("auto") == torch.device("cuda", 0)
    assert runtime.resolve_device("cuda", local_rank=3) == torch.device("cuda", 1)  # torchrun: this rank's GPU
    assert runtime.resolve_device("CUDA:1") == torch.device("cuda", 1)


@pytest.mark.parametrize(
    "spec, n, message",
    [
        ("gpu", 1, "unknown device 'gpu'; use auto, cpu, cuda or cuda:N"),
        ("cuda:x", 1, "unknown device 'cuda:x'"),
        ("cuda", 0, "device 'cuda' needs CUDA, but no CUDA device is available; use auto or cpu"),
        ("cuda:1", 0, "no CUDA device is available"),
        ("cuda:2", 2, "device 'cuda:2': this machine has 2 CUDA device(s), cuda:0 to cuda:1"),
    ],
)
def test_device_errors_are_one_line_naming_the_value(cuda, spec: str, n: int, message: str) -> None:
    cuda(n)
    with pytest.raises(ConfigError) as err:
        runtime.resolve_device(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_one_meaning_of_auto_precision(cuda, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime.cpu_has_fast_bf16.cache_clear()
    monkeypatch.setenv(runtime.ENV_OVERRIDE, "0")
    try:
        assert runtime.resolve_precision("auto", "cpu") == "fp32"
        monkeypatch.setenv(runtime.ENV_OVERRIDE, "1")
        runtime.cpu_has_fast_bf16.cache_clear()
        assert runtime.resolve_precision("auto", "cpu") == "bf16"
        cuda(1)
        assert runtime.resolve_precision("auto", "cuda") == "fp16"  # a GPU without bf16
    finally:
        runtime.cpu_has_fast_bf16.cache_clear()


def test_precision_names_and_dtypes() -> None:
    assert [runtime.precision_name(v) for v in ("float32", "float16", "bfloat16", "BF16", "auto")] == [
        "fp32",
        "fp16",
        "bf16",
        "bf16",
        "auto",
    ]
    assert runtime.precision_dtype("bf16") is torch.bfloat16 and runtime.precision_dtype("float32") is torch.float32
    with pytest.raises(ConfigError, match="unknown precision 'half-ish'"):
        runtime.precision_name("half-ish")
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        runtime.resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="resolved"):
        runtime.precision_dtype("auto")
    assert runtime.resolve_runtime("cpu", "fp32") == (torch.device("cpu"), "fp32")


def test_every_caller_uses_the_one_resolver() -> None:
    from cgclip.captions import local_backend
    from cgclip.train import distributed, setup, trainer

    assert distributed.resolve_device is runtime.resolve_device
    assert setup.resolve_precision is trainer.resolve_precision is runtime.resolve_precision
    assert local_backend.resolve_device is runtime.resolve_device
    assert local_backend.resolve_dtype("float32", torch.device("cpu")) is torch.float32
    with pytest.raises(ConfigError, match="CUDA"):
        local_backend.resolve_dtype("fp16", torch.device("cpu"))


def test_the_old_precision_module_is_the_runtime_module() -> None:
    import importlib
    import sys

    sys.modules.pop("cgclip.precision", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("cgclip.precision")
    assert old is runtime and old.autocast is runtime.autocast
    assert any(issubclass(w.category, DeprecationWarning) and "cgclip.runtime" in str(w.message) for w in caught)


def test_check_device_needs_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from cgclip.runtime import check_device, PRECISIONS; check_device('cuda:3'); "
        "print('torch' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_pretraining_batches_move_to_the_device() -> None:
    """A pretraining step batch moves every tensor (also inside dicts) to the device; on the CPU it is unchanged."""
    from cgclip.pretrain.batches import StepBatch
    from cgclip.pretrain.run import batch_to

    t = torch.zeros(2)
    batch = StepBatch(t, t, t, t, t, t, {"hair": slice(0, 2)}, {"hair": t}, {"tens": t}, "mixed", {"ones": t})
    assert batch_to(batch, torch.device("cpu")) is batch
    moved = batch_to(batch, torch.device("meta"))
    assert moved.pixels.is_meta and moved.value_labels["hair"].is_meta and moved.value_digits["ones"].is_meta
    assert moved.value_slices == {"hair": slice(0, 2)} and moved.kind == "mixed"
