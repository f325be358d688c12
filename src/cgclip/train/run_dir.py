"""The run folder: everything a training run writes, in one place.

::

    RUN/
      config.yaml          resolved configuration (what `cgclip train` ran with; `--resume` reads it back)
      run.json             seed, model, dataset, world size, start time, command line, status
      dataset.json         dataset statistics (train / validation / query / gallery) and the validation identities
      environment.json     Python, torch, transformers and cgclip versions, device, threads
      metrics.jsonl        one JSON line per epoch: losses, lr, throughput, time, peak memory, validation metrics
      checkpoints/         last.json + last-eNNNN.safetensors (resumable), best.json + best-eNNNN.safetensors
      model.safetensors    the final weights for inference, with model.json (how to rebuild the model)
      results.json         written by `cgclip evaluate`

Every file is written atomically (:mod:`cgclip.io_utils`).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from cgclip.config import Config, config_from_dict, config_to_yaml
from cgclip.errors import CheckpointError, ConfigError
from cgclip.io_utils import atomic_write_text, read_json, read_text, write_json

#: The file that marks a folder as a cgclip run (written first, before any other file of the run).
MARKER = ".cgclip-run"


class RunDir:
    """Paths and readers/writers of a run folder (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    config_path = property(lambda self: self.root / "config.yaml")
    run_path = property(lambda self: self.root / "run.json")
    dataset_path = property(lambda self: self.root / "dataset.json")
    environment_path = property(lambda self: self.root / "environment.json")
    metrics_path = property(lambda self: self.root / "metrics.jsonl")
    checkpoints = property(lambda self: self.root / "checkpoints")
    model_path = property(lambda self: self.root / "model.safetensors")
    model_info_path = property(lambda self: self.root / "model.json")
    results_path = property(lambda self: self.root / "results.json")

    marker_path = property(lambda self: self.root / MARKER)

    def create(self) -> None:
        """Make the folder (and its checkpoint folder) and mark it as a cgclip run."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        if not self.marker_path.exists():
            atomic_write_text(self.marker_path, "written by cgclip train; this folder is a cgclip run\n")

    def is_ours(self) -> bool:
        """Whether cgclip wrote this folder: its marker, or the run.json of a run made before the marker existed."""
        if self.marker_path.is_file():
            return True
        try:
            info = read_json(self.run_path)
        except Exception:  # noqa: BLE001 - unreadable or foreign: not ours
            return False
        return isinstance(info, dict) and {"status", "seed", "model"} <= set(info)

    def exists(self) -> bool:
        """Whether this folder already holds a run (a saved configuration)."""
        return self.config_path.is_file()

    def has_checkpoint(self) -> bool:
        """Whether a resumable checkpoint is present."""
        return (self.checkpoints / "last.json").is_file()

    # --------------------------------------------------------------------------------------------- config
    def save_config(self, cfg: Config) -> None:
        """Write the resolved configuration as YAML."""
        atomic_write_text(self.config_path, config_to_yaml(cfg))

    def load_config(self) -> Config:
        """Read the run's saved configuration back."""
        if not self.config_path.is_file():
            raise ConfigError(
                "no config.yaml: this is not a cgclip run folder (pass the --out of cgclip train)",
                path=self.config_path,
            )
        try:
            tree = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML ({exc})", path=self.config_path) from exc
        return config_from_dict(tree, source=str(self.config_path))

    # --------------------------------------------------------------------------------------------- records
    def write(self, name: str, obj: Any) -> None:
        """Write ``obj`` as JSON to ``RUN/<name>``."""
        write_json(self.root / name, obj)

    def read(self, name: str) -> Any:
        """Read ``RUN/<name>`` (JSON)."""
        return read_json(self.root / name)

    def read_metrics(self) -> list[dict[str, Any]]:
        """All per-epoch metric records (empty when none yet); a damaged line is named (CheckpointError)."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        for n, line in enumerate(read_text(self.metrics_path, "metrics file").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CheckpointError(
                    f"line {n} is not valid JSON ({exc.msg}); delete the line or the file", path=self.metrics_path
                ) from None
            if not isinstance(row, dict):
                raise CheckpointError(f"line {n} is not a JSON object; delete the line", path=self.metrics_path)
            rows.append(row)
        return rows

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.jsonl`` atomically with ``rows`` (so a resumed run drops epochs it repeats)."""
        text = "".join(json.dumps(r, default=_default) + "\n" for r in rows)
        atomic_write_text(self.metrics_path, text)


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def environment(device: torch.device | str, world_size: int = 1) -> dict[str, Any]:
    """Versions and hardware the run used."""
    import numpy

    from cgclip import __version__

    env: dict[str, Any] = {
        "cgclip": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "world_size": world_size,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(torch.device(device) if str(device).startswith("cuda") else 0)
        env["gpus"] = torch.cuda.device_count()
    return env
