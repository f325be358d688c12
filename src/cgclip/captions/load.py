"""``load_identity_captions``: the captions of each training identity, from a caption store or an identity table."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from cgclip.captions.paraphrase import paraphrase
from cgclip.captions.store import CaptionRecord, CaptionStore
from cgclip.errors import CgclipError, DataError

logger = logging.getLogger(__name__)


def identity_table_path(source: str | Path) -> Path | None:
    """The ``identities.csv`` a source names (the file itself, or the one in a dataset folder); None for a store."""
    path = Path(source)
    if path.is_dir():
        table = path / "identities.csv"
        if not table.is_file():
            raise DataError(
                "folder has no identities.csv; pass a caption store (.jsonl), an identities.csv or a "
                "dataset folder built by cgclip build-mot",
                path=path,
            )
        return table
    if path.suffix.lower() == ".csv":
        return path
    return None


def annotation_records(
    table: str | Path,
    num_captions: int = 10,
    seed: int = 0,
    identities: Iterable[str] | None = None,
    splits: Iterable[str] | None = None,
) -> list[CaptionRecord]:
    """Captions made from an identity table: per identity the canonical description (source ``"annotation"``)
    followed by rule-based paraphrases (source ``"paraphrase"``), ``num_captions`` in all.

    ``identities`` / ``splits`` restrict which rows are used (None = all).
    """
    from cgclip.data.identity_table import read_identity_table

    return captions_from_rows(read_identity_table(table), num_captions, seed, identities, splits)


def captions_from_rows(
    rows: Sequence,
    num_captions: int = 10,
    seed: int = 0,
    identities: Iterable[str] | None = None,
    splits: Iterable[str] | None = None,
) -> list[CaptionRecord]:
    """:func:`annotation_records` for identity-table rows already read (``IdentityRecord`` objects)."""
    wanted = set(identities) if identities is not None else None
    split_set = set(splits) if splits is not None else None
    out: list[CaptionRecord] = []
    for row in rows:
        if wanted is not None and row.identity_id not in wanted:
            continue
        if split_set is not None and row.split not in split_set:
            continue
        texts = paraphrase(row.attributes, row.identity_id, n=num_captions, seed=seed)
        for i, text in enumerate(texts):
            source = "annotation" if i == 0 else "paraphrase"
            out.append(
                CaptionRecord(
                    identity=row.identity_id, text=text, source=source, model=None, prompt_id=f"rules-v1-seed{seed}"
                )
            )
    return out


def load_identity_captions(
    source: str | Path,
    identities: Sequence[str],
    *,
    allow_missing: bool = False,
    sources: Iterable[str] | None = None,
    num_captions: int = 10,
    seed: int = 0,
) -> list[list[str]]:
    """The captions of each identity in ``identities`` (same order), deduplicated.

    ``source`` is a caption store (``.jsonl``: identity-level captions plus tracklet/frame captions aggregated to
    their identity, optionally only of ``sources``), or an ``identities.csv`` / a dataset folder holding one (captions
    generated from the annotations: ``num_captions`` per identity with ``seed``). Identities without captions raise a
    :class:`CgclipError` naming how many and a few of them, unless ``allow_missing`` (they get empty lists).
    """
    table = identity_table_path(source)
    if table is not None:
        by_identity: dict[str, list[str]] = {}
        for rec in annotation_records(table, num_captions, seed, identities=identities):
            by_identity.setdefault(rec.identity, []).append(rec.text)
    else:
        path = Path(source)
        if not path.is_file():
            raise CgclipError(
                "caption store not found; run cgclip caption from-annotations or cgclip caption mllm "
                "first, or pass a dataset folder with identities.csv",
                path=path,
            )
        by_identity = CaptionStore(path).by_identity(sources)
        extra = set(by_identity) - {str(name) for name in identities}
        if extra:
            logger.info(
                "%s: %d captioned identities are not among the %d requested (e.g. %s)",
                path,
                len(extra),
                len(identities),
                ", ".join(sorted(extra)[:3]),
            )
    out = [list(by_identity.get(str(name), [])) for name in identities]
    missing = [str(name) for name, caps in zip(identities, out) if not caps]
    if missing:
        example = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        message = (
            f"{len(missing)} of {len(identities)} identities have no captions (e.g. {example}); caption them "
            "or allow missing captions"
        )
        if not allow_missing:
            raise CgclipError(message, path=source)
        logger.warning("%s: %s", source, message)
    return out
