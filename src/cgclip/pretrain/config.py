"""The pretraining recipe (:class:`PretrainConfig`), in a module without torch so that ``cgclip pretrain-clip`` can
show its defaults while the command line builds its parsers. The run itself is :mod:`cgclip.pretrain.run`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cgclip.clip.sizes import TINY_SIZES
from cgclip.config import check_options
from cgclip.config_sections import SEED_MAX, option
from cgclip.errors import ConfigError

#: Steps of the shipped checkpoint's recipe (:mod:`cgclip.clip.embedded`).
SHIPPED_STEPS = 3000
#: How pretraining crops are framed: cut at the person's box in a world scene, or a small person on a plain background.
CROP_STYLES = ("tight", "loose")


@dataclass
class PretrainConfig:
    """Pretraining settings; the defaults are the recipe of the shipped checkpoint (:mod:`cgclip.clip.embedded`)."""

    # clip.sizes.TINY_SIZES: tiny-vit (16-px patches), tiny / tiny-cnn (conv stems)
    architecture: str = option("tiny-cnn", choices=TINY_SIZES)
    minutes: float = option(4.0, bounds=(0, None), open_min=True)  # time budget, used only when steps is None
    steps: int | None = option(SHIPPED_STEPS, bounds=(1, None))
    seed: int = option(0, bounds=(0, SEED_MAX))
    batch_size: int = option(48, bounds=(2, None))  # identity crops (distinct identities) with one caption each
    number_batch: int = option(40, bounds=(0, None))  # back-view crops wearing random numbers, added to each step
    lr: float = option(5e-4, bounds=(0, None), open_min=True)
    weight_decay: float = option(0.1, bounds=(0, None))
    warmup_steps: int = option(100, bounds=(0, None))
    train_identities_per_kind: int = option(640, bounds=(1, None))
    crops_per_identity: int = option(8, bounds=(1, None))
    # CROP_STYLES: cut at the box in a world scene (as ReID crops), or loose
    crop_style: str = option("tight", choices=CROP_STYLES)
    heldout_identities_per_kind: int = option(96, bounds=(1, None))
    heldout_crops_per_identity: int = option(4, bounds=(1, None))  # one per view
    paraphrases: int = option(10, bounds=(1, None))
    caption_mix: tuple[float, ...] = option((0.3, 0.3, 0.4), bounds=(0, None))  # caption kinds: long, sentence, phrase
    number_crops: int = option(8192, bounds=(1, None))  # size of the random-number pool
    num_merges: int = option(1500, bounds=(0, None))
    # share of each batch drawn as whole teams / groups (same uniform: hard negatives)
    group_fraction: float = option(0.5, bounds=(0, 1))
    # text-classifier loss over attribute values (pretrain_targets)
    attribute_weight: float = option(1.0, bounds=(0, None))
    stem_weight: float = option(1.0, bounds=(0, None))  # linear heads on the max-pooled conv stem
    # the digit head shared by both towers' embeddings (pretrain_targets); 0 = off
    joint_digit_weight: float = option(1.0, bounds=(0, None))
    # the stem and its heads learn at 4x lr (the probe's CNN learns digits at 2e-3)
    stem_lr_scale: float = option(4.0, bounds=(0, None), open_min=True)
    # steps that train the stem and its heads alone first (before ``steps``). Off: after 600 of them the stem read
    # 59 % of held-out numbers, but the joint phase then did not learn (contrastive loss 3.6, attribute loss 3.3 after
    # 650 joint steps; colours at chance), where a joint run from the start has its colours at 2-10x chance by then
    stem_steps: int = option(0, bounds=(0, None))
    max_values: int = option(48, bounds=(2, None))  # values per attribute a crop is classified among in one step
    # steps between resumable states and zero-shot curve points (fixed-step runs)
    checkpoint_every: int = option(250, bounds=(1, None))


def check_pretrain_config(cfg: PretrainConfig, names: Mapping[str, str] | None = None) -> None:
    """Check every option against its declared range or choices, then the rules between them; raise ConfigError
    naming the option (``names`` spells fields as the caller's user knows them, e.g. command-line flags)."""
    check_options(cfg, names)
    if len(cfg.caption_mix) != 3 or sum(cfg.caption_mix) <= 0:
        raise ConfigError(f"caption_mix needs 3 non-negative weights (long, sentence, phrase), got {cfg.caption_mix}")
    if cfg.number_batch > cfg.number_crops:
        raise ConfigError(f"number_batch ({cfg.number_batch}) cannot exceed number_crops ({cfg.number_crops})")
    if cfg.stem_steps and cfg.architecture == "tiny-vit":
        raise ConfigError("stem_steps needs a conv-stem architecture (tiny or tiny-cnn)")
