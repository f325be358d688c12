"""Deprecated: the precision rules moved to :mod:`cgclip.runtime` (device and precision in one module).

``import cgclip.precision`` still works for one release: it is :mod:`cgclip.runtime` itself (the same module
object, so patching it patches the rules), with a DeprecationWarning.
"""

from __future__ import annotations

import sys
import warnings

from cgclip import runtime

warnings.warn(
    "cgclip.precision moved to cgclip.runtime; the old path will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = runtime
