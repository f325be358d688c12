"""Sizes of the end-to-end demo: the default run (8–18 minutes on 2 CPU cores, measured; the goal is 10) and ``--quick``
(under 5)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cgclip.registry import MODELS as REGISTERED_MODELS

WORLDS = ("sports", "dance")
MODELS = REGISTERED_MODELS.names()  # every registered model, in registration order (the baselines first)


@dataclass
class DemoSettings:
    """Everything the demo decides: world sizes and training overrides (the CLIP is the shipped embedded one).

    Attributes:
        world_sizes: keyword sizes for :func:`cgclip.synth.generate_world` (empty = the world's default preset).
        world_preset: ``"default"`` or ``"tiny"`` preset of the synthetic world.
        train_overrides: ``key=value`` overrides applied on top of the ``tiny`` training preset.
        min_height: the builder's minimum crop height in pixels.
    """

    world_preset: str = "default"
    world_sizes: dict[str, int] = field(default_factory=dict)
    train_overrides: list[str] = field(default_factory=list)
    min_height: int = 32

    def to_dict(self) -> dict[str, Any]:
        """JSON view, recorded in ``results.json``."""
        return asdict(self)


def demo_settings(quick: bool) -> DemoSettings:
    """The default demo, or the ``--quick`` first look (smaller worlds, fewer epochs, the same shipped CLIP)."""
    if not quick:
        return DemoSettings()
    return DemoSettings(
        world_preset="default",
        world_sizes={
            "train_identities": 24,
            "val_identities": 16,
            "train_sequences": 6,
            "val_sequences": 4,
            "frames": 40,
        },
        train_overrides=["train.epochs=4", "train.eval_every=2", "optim.milestones=[3]", "data.val_identities=4"],
    )
