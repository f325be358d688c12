"""The pretraining recipe (:class:`PretrainConfig`), in a module without torch so that ``cgclip pretrain-clip`` can
show its defaults while the command line builds its parsers. The run itself is :mod:`cgclip.pretrain.run`."""

from __future__ import annotations

from dataclasses import dataclass

#: Steps of the shipped checkpoint's recipe (:mod:`cgclip.clip.embedded`).
SHIPPED_STEPS = 3000
#: How pretraining crops are framed: cut at the person's box in a world scene, or a small person on a plain background.
CROP_STYLES = ("tight", "loose")


@dataclass
class PretrainConfig:
    """Pretraining settings; the defaults are the recipe of the shipped checkpoint (:mod:`cgclip.clip.embedded`)."""

    architecture: str = "tiny-cnn"  # clip.sizes.TINY_SIZES: tiny-vit (16-px patches), tiny / tiny-cnn (conv stems)
    minutes: float = 4.0  # time budget, used only when steps is None
    steps: int | None = SHIPPED_STEPS
    seed: int = 0
    batch_size: int = 48  # identity crops (distinct identities) with one caption each
    number_batch: int = 40  # back-view crops wearing random numbers, added to each step
    lr: float = 5e-4
    weight_decay: float = 0.1
    warmup_steps: int = 100
    train_identities_per_kind: int = 640
    crops_per_identity: int = 8
    crop_style: str = "tight"  # CROP_STYLES: cut at the box in a world scene (as ReID crops), or loose
    heldout_identities_per_kind: int = 96
    heldout_crops_per_identity: int = 4  # one per view
    paraphrases: int = 10
    caption_mix: tuple[float, ...] = (0.3, 0.3, 0.4)  # caption kinds: long, sentence, phrase
    number_crops: int = 8192  # size of the random-number pool
    num_merges: int = 1500
    group_fraction: float = 0.5  # share of each batch drawn as whole teams / groups (same uniform: hard negatives)
    attribute_weight: float = 1.0  # text-classifier loss over attribute values (pretrain_targets)
    stem_weight: float = 1.0  # linear heads on the max-pooled conv stem
    joint_digit_weight: float = 1.0  # the digit head shared by both towers' embeddings (pretrain_targets); 0 = off
    stem_lr_scale: float = 4.0  # the stem and its heads learn at 4x lr (the probe's CNN learns digits at 2e-3)
    # steps that train the stem and its heads alone first (before ``steps``). Off: after 600 of them the stem read
    # 59 % of held-out numbers, but the joint phase then did not learn (contrastive loss 3.6, attribute loss 3.3 after
    # 650 joint steps; colours at chance), where a joint run from the start has its colours at 2-10x chance by then
    stem_steps: int = 0
    max_values: int = 48  # values per attribute a crop is classified among in one step
    checkpoint_every: int = 250  # steps between resumable states and zero-shot curve points (fixed-step runs)
