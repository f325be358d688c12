"""The model and dataset registries: every model and dataset name is declared here once, with what it needs.

A registration names its entry points as ``"module:function"`` strings, imported on first use, so reading the
names (configuration checks, ``argparse`` choices, ``cgclip --help``) imports nothing heavy.

* :data:`MODELS` — name → ``builder(image_encoder, num_classes, opts, **context)`` (see
  :func:`cgclip.models.build.build_model`), a display ``label``, the model's own ``defaults`` for the
  :class:`~cgclip.config_sections.ModelConfig` fields left at None and ``data_defaults`` for the
  :class:`~cgclip.config_sections.DataConfig` fields left at None.
* :data:`DATASETS` — name → ``loader(root, **options)`` returning a
  :class:`~cgclip.data.tracklet.TrackletDataset` and ``detector(root) -> bool`` (does the folder hold this format?).

Adding a model or a dataset is one new file (its builder or loader) and one ``register`` call below
(docs/DEVELOPING.md shows an example).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cgclip.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    """One registered name: its entry points (``"module:function"``) and plain facts."""

    name: str
    targets: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self, role: str) -> Callable[..., Any]:
        """Import and return the entry point ``role`` (for example ``"builder"``)."""
        module, _, attr = self.targets[role].partition(":")
        return getattr(importlib.import_module(module), attr)


class Registry:
    """Names of one kind (``model``, ``dataset``) in registration order, each with its :class:`Entry`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, targets: dict[str, str], **meta: Any) -> None:
        """Declare ``name`` with its entry points ``{role: "module:function"}`` and plain facts ``meta``."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, dict(targets), dict(meta))

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and for plugins that replace an entry)."""
        self[name]
        del self._entries[name]

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> Entry:
        """The entry of ``name``; a one-line :class:`ConfigError` listing the names when it is unknown."""
        entry = self._entries.get(name)
        if entry is None:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}")
        return entry

    def meta(self, name: str, key: str, default: Any = None) -> Any:
        """The plain fact ``key`` of ``name`` (``default`` when it declares none)."""
        return self[name].meta.get(key, default)


MODELS = Registry("model")
MODELS.register(
    "tap",
    {"builder": "cgclip.models.tap:build"},
    label="TAP",
    long_label="TAP (CLIP + temporal average pooling)",
    defaults={"sie": False, "sie_tokens": "all"},
    data_defaults={"erase_mode": "clip"},
)
# TF-CLIP: SIE on the CLS token (configs/vit_clipreid.yml SIE_CAMERA; model/clip/model.py l. 223) and its released
# per-frame random erasing (docs/training.md)
MODELS.register(
    "tfclip",
    {"builder": "cgclip.models.tfclip:build"},
    label="TF-CLIP",
    long_label="TF-CLIP",
    defaults={"sie": True, "sie_tokens": "cls"},
    data_defaults={"erase_mode": "frame"},
)
MODELS.register(
    "cgclip",
    {"builder": "cgclip.models.cgclip_model:build"},
    label="CG-CLIP",
    long_label="CG-CLIP",
    defaults={"sie": False, "sie_tokens": "all"},
    data_defaults={"erase_mode": "clip"},
)

DATASETS = Registry("dataset")
DATASETS.register(
    "mars",
    {"loader": "cgclip.data.mars:load_mars", "detector": "cgclip.data.mars:detect"},
    description="MARS (bbox_train/, bbox_test/, info/)",
)
DATASETS.register(
    "lsvid",
    {"loader": "cgclip.data.lsvid:load_lsvid", "detector": "cgclip.data.lsvid:detect"},
    description="LS-VID (info/list_sequence/, info/data/info_test.mat)",
)
DATASETS.register(
    "ilidsvid",
    {"loader": "cgclip.data.ilidsvid:load_ilidsvid", "detector": "cgclip.data.ilidsvid:detect"},
    description="iLIDS-VID (i-LIDS-VID/, train-test people splits/)",
)
DATASETS.register(
    "vreid",
    {"loader": "cgclip.data.vreid:load_vreid", "detector": "cgclip.data.vreid:detect"},
    description="a folder written by cgclip build-mot (manifest.json)",
)
DATASETS.register(
    "folder",
    {"loader": "cgclip.data.tracklet_folder:load_tracklet_folder", "detector": "cgclip.data.tracklet_folder:detect"},
    description="a tracklet folder (train/, query/, gallery/ of PID/TRACKLET/ frame folders; cameras.csv optional)",
)
