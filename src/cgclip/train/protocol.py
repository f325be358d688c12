"""Multi-split protocols: iLIDS-VID trains and tests once per split (10 splits) and reports mean ± std.

``run_split_protocol`` trains and evaluates each requested split into ``OUT/split-K/`` (an ordinary run folder) and
writes ``OUT/results.json`` with every split's numbers and their mean and standard deviation. It resumes: a split
with ``results.json`` is not redone, a split whose training was interrupted continues from its last checkpoint.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgclip.config import Config, config_to_dict
from cgclip.errors import ConfigError
from cgclip.eval.results import METRICS, read_results, write_results
from cgclip.io_utils import read_json, write_json

log = logging.getLogger(__name__)


def parse_splits(spec: str) -> list[int]:
    """``"0-9"`` → 0..9, ``"0,2,5"`` → [0, 2, 5], ``"3"`` → [3] (iLIDS-VID splits are 0–9)."""
    out: list[int] = []
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ConfigError(f"--protocol-splits {spec!r}: use a range like 0-9 or a list like 0,2,5")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"--protocol-splits {spec!r}: range {part} is empty")
        out.extend(range(lo, hi + 1))
    if not out or any(s > 9 for s in out):
        raise ConfigError(f"--protocol-splits {spec!r}: splits must be in 0-9")
    return sorted(set(out))


def aggregate(per_split: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation (ddof=1 when more than one split) of each metric over splits."""
    out: dict[str, Any] = {}
    for key in METRICS:
        values = np.array([r[key] for r in per_split.values() if key in r], dtype=np.float64)
        if len(values):
            out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def run_split_protocol(
    cfg: Config,
    out_dir: str | Path,
    splits: Sequence[int],
    *,
    captions: Sequence[Sequence[str]] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_split: Callable[[int, dict[str, Any]], None] | None = None,
    command: Sequence[str] | None = None,
    **evaluate_options: Any,
) -> dict[str, Any]:
    """Train and evaluate every split in ``splits`` (see the module docstring); returns the aggregate results."""
    from cgclip.train.distributed import env_world_size
    from cgclip.train.inference import evaluate_run
    from cgclip.train.run_dir import RunDir
    from cgclip.train.trainer import train

    if env_world_size() > 1:
        raise ConfigError(
            "the split protocol runs one split after another in one process; under torchrun train "
            "each split with `cgclip train --set data.split=K` and evaluate it with `cgclip evaluate`"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_split: dict[int, dict[str, Any]] = {}
    for split in splits:
        sub = out / f"split-{split}"
        results_path = sub / "results.json"
        if results_path.is_file():
            result = read_results(results_path)
            log.info("split %d already evaluated; reusing %s", split, results_path)
        else:
            scfg = copy.deepcopy(cfg)
            scfg.data.split = int(split)
            run = RunDir(sub)
            if not (run.model_path.is_file() and run.read("run.json").get("status") == "completed"):
                train(scfg, sub, captions=captions, resume=run.exists(), on_epoch=on_epoch, command=command)
            result = evaluate_run(sub, **evaluate_options)
        per_split[split] = result
        if on_split is not None:
            on_split(split, result)
    parts = protocol_summary(per_split)
    summary = {
        "protocol": parts["protocol"],
        "model": next(iter(per_split.values())).get("model"),
        "metrics": parts["metrics"],
        "splits": parts["splits"],
        "config": config_to_dict(cfg),
    }
    summary = write_results(out / "results.json", summary)
    write_json(out / "protocol.json", {"kind": "splits", "splits": list(per_split)})
    return summary


def protocol_summary(per_split: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The split-protocol part of a summary from each split's results: ``protocol`` (the first split's, less its
    split and epoch, with the splits and how they are aggregated), ``metrics`` (:func:`aggregate`) and ``splits``
    (each split's headline metrics)."""
    first = next(iter(per_split.values()))
    protocol = {k: v for k, v in first.get("protocol", {}).items() if k not in ("split", "epoch")}
    return {
        "protocol": {**protocol, "splits": list(per_split), "aggregate": "mean and std (ddof=1) over splits"},
        "metrics": aggregate(per_split),
        "splits": {str(s): {k: r[k] for k in METRICS if k in r} for s, r in per_split.items()},
    }


def is_protocol_dir(root: str | Path) -> bool:
    """Whether ``root`` is a split-protocol folder (``protocol.json`` and ``split-K/`` runs) rather than one run."""
    root = Path(root)
    return (root / "protocol.json").is_file() and not (root / "config.yaml").is_file()


def evaluate_protocol(
    root: str | Path,
    dataset_root: str | Path | None = None,
    *,
    output: str | Path | None = None,
    on_split: Callable[[int, dict[str, Any]], None] | None = None,
    **evaluate_options: Any,
) -> dict[str, Any]:
    """Evaluate every split of a protocol folder again (:func:`cgclip.train.inference.evaluate_run` with
    ``evaluate_options``) and write the updated summary to ``output`` (default ``ROOT/results.json``); returns it."""
    from cgclip.train.inference import evaluate_run

    root = Path(root)
    per_split: dict[int, dict[str, Any]] = {}
    for split in read_json(root / "protocol.json")["splits"]:
        per_split[split] = evaluate_run(root / f"split-{split}", dataset_root, **evaluate_options)
        if on_split is not None:
            on_split(split, per_split[split])
    if not per_split:
        raise ConfigError(
            "protocol.json lists no splits; rerun the protocol (cgclip train --protocol-splits)",
            path=root / "protocol.json",
        )
    summary = read_results(root / "results.json") if (root / "results.json").is_file() else {}
    summary.update(protocol_summary(per_split))
    return write_results(Path(output) if output else root / "results.json", summary)
