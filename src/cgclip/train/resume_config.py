"""The configuration a resumed run continues with: the saved one, with the few settings a resume may change, and
values of settings added since the run started (so that an old run resumes as it ran)."""

from __future__ import annotations

import logging

from cgclip.config import Config, ModelConfig, OptimConfig, diff_configs
from cgclip.errors import ConfigError
from cgclip.train.run_dir import RunDir

log = logging.getLogger(__name__)

#: Settings that may change when a run is resumed (everything else must match the saved configuration).
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.eval_every",
    "train.num_workers",
    "train.log_every",
    "train.save_every",
    "data.root",
    "data.captions",
    "model.clip_path",
    "eval.batch_size",
}


#: Values of settings added later, for runs whose saved config.yaml predates them (so that they resume as they ran).
LEGACY_VALUES = {"optim.bias_lr_factor": 1.0, "optim.large_fc_lr_mult": 1.0, "model.tfe_norm": False}


def _apply_legacy_values(saved: Config, cfg: Config, run: RunDir) -> None:
    """Give ``saved`` the :data:`LEGACY_VALUES` of the keys its config.yaml lacks, and ``cfg`` too where it holds the
    default (a resume command that does not set them)."""
    import yaml

    tree = yaml.safe_load(run.config_path.read_text(encoding="utf-8")) or {}
    defaults = {"optim": OptimConfig(), "model": ModelConfig()}
    for key, value in LEGACY_VALUES.items():
        section, name = key.split(".")
        if name in (tree.get(section) or {}):
            continue
        setattr(getattr(saved, section), name, value)
        if getattr(getattr(cfg, section), name) == getattr(defaults[section], name):
            setattr(getattr(cfg, section), name, value)
        log.info("the run's config.yaml predates %s: resuming with %s (its behaviour then)", key, value)


def _resolve_config(cfg: Config, run: RunDir, resume: bool) -> Config:
    """On resume, the saved configuration wins; only :data:`RESUMABLE_CHANGES` may differ."""
    if not (resume and run.exists()):
        return cfg
    saved = run.load_config()
    _apply_legacy_values(saved, cfg, run)
    changed = [k for k in diff_configs(saved, cfg) if k not in RESUMABLE_CHANGES]
    # a setting left at its default on the command line (e.g. no --clip) keeps the saved value
    if changed:
        raise ConfigError(
            f"--resume with settings that differ from the run's config.yaml: {', '.join(changed)}; "
            "resume with the same settings or start a new run with another --out",
            path=run.config_path,
        )
    for key in RESUMABLE_CHANGES:
        section, name = key.split(".")
        new = getattr(getattr(cfg, section), name)
        if new not in (None, ""):
            setattr(getattr(saved, section), name, new)
    return saved
