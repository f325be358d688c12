"""cgclip: video-based person re-identification with CG-CLIP (Caption-Guided CLIP).

The library takes plain arguments; the ``cgclip`` command line (:mod:`cgclip.cli`) is a thin layer on top.
"""

__version__ = "0.1.0"

from cgclip.errors import CgclipError  # noqa: E402

__all__ = ["CgclipError", "__version__"]
