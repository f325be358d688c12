"""Resumable training checkpoints without pickle: tensors in safetensors, everything else in a JSON sidecar.

A checkpoint ``TAG`` in a folder is two files:

* ``TAG-eNNNN.safetensors`` — the model's state dict (keys ``model/<name>``) and the optimizer's tensor state
  (keys ``optim/<param index>/<name>``), with a random ``token`` in the safetensors metadata;
* ``TAG.json`` — the sidecar: format, epoch, the tensor file's name and token, optimizer hyper-parameters and scalar
  state, lr schedule, gradient scaler, the random number generator states of every rank (torch, CUDA, numpy, Python),
  sampler state and free-form training state (best metric, history, ...).

Both are written atomically, tensors first. The sidecar is the commit point: it names the tensor file it belongs to
and carries the same token, so a run killed between the two writes still finds the previous, complete checkpoint, and a
mismatched pair is reported instead of silently loaded. Older tensor files of the same tag are deleted after the
commit.
"""

from __future__ import annotations

import base64
import logging
import random
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from cgclip.errors import CheckpointError
from cgclip.io_utils import atomic_write_bytes, read_json, write_json

log = logging.getLogger(__name__)

FORMAT = "cgclip-checkpoint"
VERSION = 1


# ----------------------------------------------------------------------------------------------------------- tensors
def _safe_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors; tensors sharing storage with an earlier one are cloned (safetensors needs
    disjoint buffers)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) if t.numel() else (id(t), 0)
        if key in seen:
            t = t.clone()
        else:
            seen.add(key)
        out[name] = t
    return out


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` to a safetensors file atomically."""
    atomic_write_bytes(path, st_save(_safe_tensors(tensors), metadata=metadata))


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file: its tensors and metadata; CheckpointError if it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("tensor file not found; the run folder is incomplete", path=path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(
            f"not a readable safetensors file ({exc}); delete it and retrain or resume from another checkpoint",
            path=path,
        ) from exc
    return tensors, meta


# ------------------------------------------------------------------------------------------------------------ RNG
def rng_state() -> dict[str, Any]:
    """This process's random number generator states (torch CPU/CUDA, numpy legacy, Python) as JSON data."""
    state: dict[str, Any] = {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode("ascii") for s in torch.cuda.get_rng_state_all()]
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = {
        "name": name,
        "keys": keys.astype(np.int64).tolist(),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }
    version, internal, gauss_next = random.getstate()
    state["python"] = {"version": version, "state": list(internal), "gauss_next": gauss_next}
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states written by :func:`rng_state`."""
    try:
        torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(state["torch"])), dtype=torch.uint8))
        if "cuda" in state and torch.cuda.is_available():
            cuda = [torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8) for s in state["cuda"]]
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
        npst = state["numpy"]
        np.random.set_state(
            (
                npst["name"],
                np.asarray(npst["keys"], dtype=np.uint32),
                npst["pos"],
                npst["has_gauss"],
                npst["cached_gaussian"],
            )
        )
        py = state["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"random-state record is damaged ({exc}); the run cannot resume exactly") from exc


# ------------------------------------------------------------------------------------------------------ optimizer
def split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (``optim/<i>/<key>``) and a JSON part."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, pstate in state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{idx}/{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`split_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/"):
            _, idx, key = name.split("/", 2)
            state.setdefault(int(idx), {})[key] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(
    folder: str | Path,
    tag: str,
    *,
    epoch: int,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``tag`` (``TAG-eNNNN.safetensors`` + ``TAG.json``) atomically into ``folder``.

    ``state`` is any JSON-serialisable training state (schedule, scaler, rng, sampler, history, ...).
    Returns the sidecar's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    tensors = {f"model/{k}": v for k, v in model_state.items()}
    sidecar: dict[str, Any] = {"format": FORMAT, "version": VERSION, "tag": tag, "epoch": int(epoch), "token": token}
    if optimizer_state is not None:
        opt_tensors, opt_meta = split_optimizer_state(optimizer_state)
        tensors.update(opt_tensors)
        sidecar["optimizer"] = opt_meta
    name = f"{tag}-e{epoch:04d}.safetensors"
    sidecar["tensors"] = name
    sidecar["state"] = state or {}
    save_tensors(folder / name, tensors, metadata={"format": FORMAT, "token": token, "tag": tag})
    write_json(folder / f"{tag}.json", sidecar)
    for old in folder.glob(f"{tag}-e*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    log.info("saved checkpoint %s (epoch %d) to %s", tag, epoch, folder)
    return folder / f"{tag}.json"


def has_checkpoint(folder: str | Path, tag: str) -> bool:
    """Whether ``folder`` holds a committed checkpoint ``tag``."""
    return (Path(folder) / f"{tag}.json").is_file()


def load_checkpoint(folder: str | Path, tag: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read checkpoint ``tag``: ``(model state dict, sidecar)``; the sidecar gains ``"optimizer_state"`` (a
    ``torch.optim`` state dict) when the checkpoint has one. CheckpointError names the file when anything is off."""
    folder = Path(folder)
    side_path = folder / f"{tag}.json"
    if not side_path.is_file():
        raise CheckpointError(
            f"no checkpoint {tag!r} here; train first (cgclip train) or pick another checkpoint", path=side_path
        )
    try:
        sidecar = read_json(side_path)
    except Exception as exc:  # CgclipError with the path
        raise CheckpointError(str(exc)) from exc
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT or "tensors" not in sidecar:
        raise CheckpointError("not a cgclip checkpoint sidecar", path=side_path)
    tensors, meta = load_tensors(folder / str(sidecar["tensors"]))
    if meta.get("token") != sidecar.get("token"):
        raise CheckpointError(
            f"tensor file {sidecar['tensors']} does not belong to this sidecar (token mismatch); "
            "the checkpoint was overwritten by another run",
            path=side_path,
        )
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    if "optimizer" in sidecar:
        sidecar["optimizer_state"] = join_optimizer_state(tensors, sidecar["optimizer"])
    return model_state, sidecar


def export_model(
    folder: str | Path, model_state: dict[str, torch.Tensor], info: dict[str, Any], name: str = "model"
) -> Path:
    """Write an inference export: ``NAME.safetensors`` (weights) and ``NAME.json`` (what is needed to rebuild it)."""
    folder = Path(folder)
    save_tensors(folder / f"{name}.safetensors", model_state, metadata={"format": "cgclip-model"})
    write_json(folder / f"{name}.json", info)
    return folder / f"{name}.safetensors"
