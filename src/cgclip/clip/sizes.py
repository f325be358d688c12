"""The names of the CLIP sizes cgclip can build (:mod:`cgclip.clip.random_clip`), in a module without torch so that
the command line can offer them while it builds its parsers."""

from __future__ import annotations

#: Every size :func:`cgclip.clip.random_clip.save_random_clip` builds.
SIZES = ("tiny", "tiny-vit", "tiny-cnn", "vit-b-16")
#: The sizes the embedded CLIP can be pretrained at (``cgclip pretrain-clip --arch``).
TINY_SIZES = ("tiny-vit", "tiny", "tiny-cnn")
