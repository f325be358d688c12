"""Fine-tuning from a trained run (``cgclip train --init RUN``): load what carries over, re-initialise the rest.

Every state entry of the new model is either **loaded** from the run's checkpoint (same name, same shape: the image
encoder, the temporal modules, the BNNecks' statistics, projections), **re-initialised** (left as the new model was
built: what depends on the training data — the ID classifiers, TF-CLIP's CLIP-Memory, CG-CLIP's Text Memory, the
SIE camera table; see ``VideoReIDModel.data_dependent_state``), or **kept as built** when the run has no such entry.
Entries of the run that the new model lacks are **skipped**. A run of another model, or an entry whose shape differs
(another CLIP layout, image size or model option), is refused with one line before anything is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from cgclip.errors import CheckpointError, ConfigError
from cgclip.train.modeling import read_model_info
from cgclip.train.run_dir import RunDir

log = logging.getLogger(__name__)


def _shape(t: torch.Tensor) -> str:
    return "×".join(map(str, t.shape)) or "scalar"


def init_from_run(model: torch.nn.Module, run_dir: str | Path, checkpoint: str = "best") -> dict[str, Any]:
    """Load the weights of run ``run_dir`` (checkpoint ``best``/``last``/``final``) into ``model`` for fine-tuning.

    Returns the report ``{"run", "checkpoint", "epoch", "loaded", "reinitialised", "kept", "skipped"}`` (lists of
    state-dict names). Raises :class:`ConfigError` for a run of another model and :class:`CheckpointError` for an
    entry whose shape does not fit.
    """
    from cgclip.train.inference import run_weights

    run = RunDir(run_dir)
    info = read_model_info(run.root)
    theirs, ours = info["model"].get("name"), getattr(model, "name", None)
    if theirs != ours:
        raise ConfigError(
            f"--init: this is a {theirs} run; it can start a {theirs} model only, not {ours}", path=run.root
        )
    state, which = run_weights(run, checkpoint)
    own = model.state_dict()
    fresh = model.data_dependent_state()
    for name, tensor in own.items():
        if name in state and name not in fresh and state[name].shape != tensor.shape:
            raise CheckpointError(
                f"--init: {name} is {_shape(state[name])} in the run but {_shape(tensor)} here — another CLIP "
                "layout, image size or model option; train with the run's (see its config.yaml)",
                path=run.root,
            )
    loaded = [k for k in own if k in state and k not in fresh]
    model.load_state_dict({k: state[k] for k in loaded}, strict=False)
    report = {
        "run": str(run.root.resolve()),
        "checkpoint": which["checkpoint"],
        "epoch": which.get("epoch"),
        "loaded": loaded,
        "reinitialised": sorted(k for k in own if k in fresh),
        "kept": [k for k in own if k not in state and k not in fresh],
        "skipped": [k for k in state if k not in own],
    }
    log.info(
        "--init %s (%s): %d tensors loaded, %d re-initialised, %d kept as built, %d skipped",
        run.root,
        which["checkpoint"],
        len(report["loaded"]),
        len(report["reinitialised"]),
        len(report["kept"]),
        len(report["skipped"]),
    )
    return report
