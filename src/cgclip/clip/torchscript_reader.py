"""Read the tensors of a TorchScript archive (e.g. OpenAI's released CLIP ``.pt`` files) without executing its code.

``torch.jit.load`` compiles and runs the archive's code, and a plain unpickler can call anything, so neither is used.
Instead the archive's ``data.pkl`` is read by a restricted unpickler that only knows how to rebuild tensors from the
archive's storage files (``data/<key>``); every TorchScript class becomes an inert attribute holder, and any other
global (a function or class outside that small list) stops the read with :class:`cgclip.errors.CheckpointError`.
The module tree is then flattened into a ``state_dict``-style mapping of dotted names to tensors.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from cgclip.errors import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class ScriptObject:
    """Inert stand-in for a TorchScript object; the pickle's BUILD step fills ``__dict__`` with its attributes."""

    qualname = "?"


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(
    storage: torch.Tensor,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    """Make a tensor view of a flat storage tensor and copy it (so it owns compact memory)."""
    if len(size) == 0:
        return storage[offset].clone()
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


def _identity(value: Any, *_: Any) -> Any:
    return value


def _is_script_module_name(module: str) -> bool:
    return module == "__torch__" or module.startswith("__torch__.")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.path = archive, prefix, path
        self.classes: dict[str, type] = {}
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if _is_script_module_name(module):
            key = f"{module}.{name}"
            if key not in self.classes:
                self.classes[key] = type(name, (ScriptObject,), {"qualname": key})
            return self.classes[key]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch.jit._pickle" and (name.startswith("build_") or name == "restore_type_tag"):
            return _identity
        raise CheckpointError(
            f"TorchScript archive refers to {module}.{name}, which a safe read does not allow; "
            "export the model's state_dict with torch.save on a trusted machine and import that",
            path=self.path,
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {pid!r} in TorchScript archive", path=self.path)
        storage_type, key = pid[1], str(pid[2])
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else torch.uint8
        if key not in self.storages:
            try:
                raw = self.archive.read(f"{self.prefix}data/{key}")
            except KeyError as exc:
                raise CheckpointError(
                    f"TorchScript archive lacks storage data/{key}; the file is truncated", path=self.path
                ) from exc
            flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
            self.storages[key] = flat.view(dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]


def is_torchscript_archive(path: str | Path) -> bool:
    """True for a zip archive written by ``torch.jit.save`` (it has ``constants.pkl`` and a ``code/`` folder)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _flatten(obj: Any, prefix: str, out: dict[str, torch.Tensor], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, ScriptObject):
            _flatten(value, f"{prefix}{name}.", out, seen)


def read_torchscript_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a TorchScript archive by dotted attribute name (parameters and buffers), read without code."""
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        data_name = next((n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")), None)
        if data_name is None:
            raise CheckpointError(
                "TorchScript archive without data.pkl; the file is truncated or not a model", path=path
            )
        prefix = data_name[: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in names and archive.read(byteorder).strip() not in (b"little", b""):
            raise CheckpointError("big-endian TorchScript archive; re-save it on a little-endian machine", path=path)
        unpickler = _RestrictedUnpickler(archive.read(data_name), archive, prefix, path)
        try:
            root = unpickler.load()
        except CheckpointError:
            raise
        except Exception as exc:  # malformed pickle stream
            raise CheckpointError(f"cannot read TorchScript archive ({type(exc).__name__}: {exc})", path=path) from exc
    if not isinstance(root, ScriptObject):
        raise CheckpointError("TorchScript archive does not hold a module", path=path)
    state: dict[str, torch.Tensor] = {}
    _flatten(root, "", state, set())
    return state
