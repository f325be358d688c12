"""Progress bars for long work (rate and ETA), quiet when not attached to a terminal unless asked."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """Progress bars are shown on a terminal, hidden under CI/pytest, and forced with ``CGCLIP_PROGRESS=1``/``0``."""
    flag = os.environ.get("CGCLIP_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no", "")
    if os.environ.get("PYTEST_CURRENT_TEST"):
        return False
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it", **kwargs: Any
) -> tqdm[T]:
    """Wrap ``iterable`` (or a manual counter when ``iterable`` is None) in a tqdm bar with rate and ETA."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(),
        dynamic_ncols=True,
        smoothing=0.1,
        **kwargs,
    )
