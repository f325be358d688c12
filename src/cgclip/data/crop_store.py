"""The crops a MOT → VReID build writes, keyed on their content so that a rebuild re-encodes only what changed."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cgclip.errors import CgclipError
from cgclip.io_utils import atomic_write_bytes, read_json, write_json


class CropStore:
    """The crops of one sequence folder, keyed by content so that a re-run reuses or moves instead of re-encoding.

    The key of a crop names its track, frame, source file (name, size, mtime), box and JPEG quality. The keys of a
    finished sequence are kept in ``.keys.json``; the file is removed while the sequence is being (re)written, so an
    interrupted run never trusts a crop it may have half-replaced. Crops are written to a temporary file and
    renamed into place (no fsync per crop: the keys file and the manifest are fsynced and are the truth).
    """

    KEYS = ".keys.json"

    def __init__(self, folder: Path, quality: int) -> None:
        self.folder, self.quality = folder, quality
        keys_path = folder / self.KEYS
        try:
            saved = read_json(keys_path) if keys_path.is_file() else {}
        except CgclipError:
            saved = {}
        keys_path.unlink(missing_ok=True)
        saved = saved if isinstance(saved, dict) else {}
        self._rel_key = {rel: key for rel, key in saved.items() if (folder / rel).is_file()}
        self._key_rel = {key: rel for rel, key in self._rel_key.items()}
        self.written: set[str] = set()

    def key(self, track_id: int, frame: int, src: Path, box: tuple[int, int, int, int]) -> str:
        """The content key of the crop ``box`` of track ``track_id`` in frame ``frame`` (image ``src``)."""
        st = src.stat()
        return f"{track_id}|{frame}|{src.name}|{st.st_size}|{st.st_mtime_ns}|{','.join(map(str, box))}|q{self.quality}"

    def _bind(self, rel: str, key: str) -> None:
        old = self._rel_key.pop(rel, None)
        if old is not None and self._key_rel.get(old) == rel:
            del self._key_rel[old]
        self._rel_key[rel], self._key_rel[key] = key, rel

    def reuse(self, rel: str, key: str) -> bool:
        """True when a crop with ``key`` exists; it is moved to ``rel`` if it lies elsewhere."""
        cur = self._key_rel.get(key)
        if cur is None:
            return False
        if cur != rel:
            (self.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.folder / cur, self.folder / rel)
            del self._rel_key[cur]
            self._bind(rel, key)
        return True

    def write(self, rel: str, key: str, image: Any) -> None:
        """Encode ``image`` (PIL) as JPEG into ``rel`` (temporary file, then rename)."""
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=self.quality)
        atomic_write_bytes(self.folder / rel, buffer.getvalue(), fsync=False)
        self._bind(rel, key)
        self.written.add(key)

    def save(self, rels: Sequence[str]) -> int:
        """Record the keys of crops ``rels`` (the sequence is complete); returns how many were not encoded now."""
        write_json(self.folder / self.KEYS, {rel: self._rel_key[rel] for rel in rels})
        return sum(1 for rel in rels if self._rel_key[rel] not in self.written)
