"""The caption store: captions per identity (optionally per tracklet or frame) with provenance, in JSONL.

Layout for a store ``captions.jsonl``:

* ``captions.jsonl`` — one caption record per line (see :class:`CaptionRecord`).
* ``captions.failures.jsonl`` — one line per work item that failed and has no caption yet (what a rerun retries).
* ``captions.journal.jsonl`` — only while a job runs (or after it was killed): records appended and flushed one per
  line. Loading the store replays it (a truncated last line is ignored), and :meth:`CaptionStore.compact` folds it
  into the two files above atomically and removes it. Old captions are therefore never lost, and identical records
  (same identity, tracklet, frame, text and source) are stored once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cgclip.errors import DataError
from cgclip.io_utils import atomic_open, read_text

logger = logging.getLogger(__name__)

SOURCES = ("annotation", "paraphrase", "mllm", "augment", "attribute", "manual")


def now_iso() -> str:
    """The current UTC time as an ISO 8601 string (seconds)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class CaptionRecord:
    """One caption with its provenance.

    ``item`` is the work-item key of the job that made it (the frame path for MLLM captions, a derived key for
    augmentations); jobs use it to skip work already done. ``tracklet``/``frame`` are None for identity-level captions.
    """

    identity: str
    text: str
    source: str
    tracklet: str | None = None
    frame: str | None = None
    model: str | None = None
    prompt_id: str | None = None
    time: str = field(default_factory=now_iso)
    item: str | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None, str, str]:
        """Deduplication key: (identity, tracklet, frame, text, source)."""
        return (self.identity, self.tracklet, self.frame, self.text, self.source)

    def to_dict(self) -> dict[str, Any]:
        """JSON view; ``item`` is left out when unset."""
        d = asdict(self)
        if d["item"] is None:
            del d["item"]
        return d


@dataclass(frozen=True)
class FailureRecord:
    """A work item that produced no caption: which job (``task`` + ``prompt_id``), which item, and why."""

    task: str
    item: str
    identity: str
    error: str
    tracklet: str | None = None
    frame: str | None = None
    attempts: int = 1
    model: str | None = None
    prompt_id: str | None = None
    time: str = field(default_factory=now_iso)

    @property
    def key(self) -> tuple[str, str | None, str]:
        """One failure per (task, prompt id, item): a later failure of the same item replaces the earlier one.

        A caption with the same (source, prompt id, item) marks the item done and removes its failure.
        """
        return (self.task, self.prompt_id, self.item)

    def to_dict(self) -> dict[str, Any]:
        """JSON view."""
        return asdict(self)


def _opt_str(d: dict[str, Any], name: str) -> str | None:
    value = d.get(name)
    return None if value is None else str(value)


def parse_caption(d: Any, path: Path, line: int) -> CaptionRecord:
    """Validate one decoded JSON line as a :class:`CaptionRecord`; raise :class:`DataError` naming the line."""
    if not isinstance(d, dict):
        raise DataError("a caption record must be a JSON object", path=path, line=line)
    identity, text, source = d.get("identity"), d.get("text"), d.get("source")
    if not isinstance(identity, (str, int)) or str(identity) == "":
        raise DataError(
            "caption record has no 'identity'; every line needs identity, text and source", path=path, line=line
        )
    if not isinstance(text, str) or not text.strip():
        raise DataError("caption record has an empty 'text'; remove the line or fill it in", path=path, line=line)
    if source not in SOURCES:
        raise DataError(f"caption record has source {source!r}; use one of {', '.join(SOURCES)}", path=path, line=line)
    return CaptionRecord(
        identity=str(identity),
        text=text.strip(),
        source=source,
        tracklet=_opt_str(d, "tracklet"),
        frame=_opt_str(d, "frame"),
        model=_opt_str(d, "model"),
        prompt_id=_opt_str(d, "prompt_id"),
        time=str(d.get("time") or ""),
        item=_opt_str(d, "item"),
    )


def _attempts(d: dict[str, Any], path: Path, line: int) -> int:
    value = d.get("attempts", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(
            f"failure record has 'attempts' {value!r}, not a count; fix the line or delete the failures file to "
            "retry everything",
            path=path,
            line=line,
        )
    return value


def parse_failure(d: Any, path: Path, line: int) -> FailureRecord:
    """Validate one decoded JSON line as a :class:`FailureRecord`."""
    if not isinstance(d, dict) or not d.get("item") or not d.get("task"):
        raise DataError(
            "failure record needs 'task' and 'item'; delete the failures file to retry everything", path=path, line=line
        )
    return FailureRecord(
        task=str(d["task"]),
        item=str(d["item"]),
        identity=str(d.get("identity", "")),
        error=str(d.get("error", "")),
        tracklet=_opt_str(d, "tracklet"),
        frame=_opt_str(d, "frame"),
        attempts=_attempts(d, path, line),
        model=_opt_str(d, "model"),
        prompt_id=_opt_str(d, "prompt_id"),
        time=str(d.get("time") or ""),
    )


def _read_jsonl(path: Path, tolerate_truncated_tail: bool = False) -> Iterator[tuple[int, Any]]:
    if not path.is_file():
        return
    lines = read_text(path, "caption file").splitlines()
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield i, json.loads(raw)
        except json.JSONDecodeError as exc:
            if tolerate_truncated_tail and i == len(lines):
                logger.warning("%s:%d: ignoring a truncated last line (the job was interrupted)", path, i)
                return
            raise DataError(f"not valid JSON ({exc.msg}); fix or delete the line", path=path, line=i) from exc


def sibling(path: Path, kind: str) -> Path:
    """``captions.jsonl`` → ``captions.<kind>.jsonl`` (the failures and journal files of a store)."""
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{stem}.{kind}.jsonl")


class CaptionStore:
    """A caption store file plus its failures file and job journal; see the module docstring for the layout."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.failures_path = sibling(self.path, "failures")
        self.journal_path = sibling(self.path, "journal")
        self._captions: dict[tuple, CaptionRecord] = {}
        self._failures: dict[tuple, FailureRecord] = {}
        self._done: set[tuple[str, str | None, str]] = set()
        self._journal: IO[str] | None = None
        self._unsynced = 0
        self.reload()

    # ----------------------------------------------------------------------------------------------- reading
    def reload(self) -> None:
        """Read the store, its failures and any journal left by an interrupted job."""
        self._captions.clear()
        self._failures.clear()
        self._done.clear()
        for line, d in _read_jsonl(self.path):
            self._add_caption(parse_caption(d, self.path, line))
        for line, d in _read_jsonl(self.failures_path):
            self._add_failure(parse_failure(d, self.failures_path, line))
        for line, d in _read_jsonl(self.journal_path, tolerate_truncated_tail=True):
            kind = d.get("kind") if isinstance(d, dict) else None
            rec = d.get("record") if isinstance(d, dict) else None
            if kind == "caption":
                self._add_caption(parse_caption(rec, self.journal_path, line))
            elif kind == "failure":
                self._add_failure(parse_failure(rec, self.journal_path, line))
            else:
                raise DataError(
                    "journal line is neither a caption nor a failure; delete the journal to drop it",
                    path=self.journal_path,
                    line=line,
                )

    @property
    def captions(self) -> list[CaptionRecord]:
        """All caption records, in the order they were first added."""
        return list(self._captions.values())

    @property
    def failures(self) -> list[FailureRecord]:
        """Failure records of items that still have no caption."""
        return list(self._failures.values())

    def __len__(self) -> int:
        return len(self._captions)

    def done_items(self, source: str, prompt_id: str | None = None) -> set[str]:
        """Item keys that already have a caption of ``source`` (and ``prompt_id`` when given)."""
        return {item for src, pid, item in self._done if src == source and (prompt_id is None or pid == prompt_id)}

    def by_identity(self, sources: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Caption texts per identity (tracklet/frame captions aggregated), deduplicated, in insertion order."""
        allowed = set(sources) if sources is not None else None
        out: dict[str, list[str]] = {}
        for r in self._captions.values():
            if allowed is None or r.source in allowed:
                texts = out.setdefault(r.identity, [])
                if r.text not in texts:
                    texts.append(r.text)
        return out

    # ----------------------------------------------------------------------------------------------- writing
    def _add_caption(self, rec: CaptionRecord) -> bool:
        if rec.key in self._captions:
            return False
        self._captions[rec.key] = rec
        if rec.item is not None:
            done = (rec.source, rec.prompt_id, rec.item)
            self._done.add(done)
            self._failures.pop(done, None)
        return True

    def _add_failure(self, rec: FailureRecord) -> None:
        if rec.key in self._done:
            return
        self._failures.pop(rec.key, None)
        self._failures[rec.key] = rec

    def add(self, records: Iterable[CaptionRecord]) -> int:
        """Add captions and save the store atomically (old + new → temp → replace); return how many were new."""
        added = sum(self._add_caption(r) for r in records)
        self.compact()
        return added

    def open_journal(self) -> None:
        """Start appending job results to the journal (each line flushed; fsync'd every few lines)."""
        if self._journal is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._journal = open(self.journal_path, "a", encoding="utf-8")

    def journal_caption(self, rec: CaptionRecord) -> bool:
        """Record a job's caption (in memory and in the journal); False if it was a duplicate."""
        if not self._add_caption(rec):
            return False
        self._write_journal("caption", rec.to_dict())
        return True

    def journal_failure(self, rec: FailureRecord) -> None:
        """Record a job's failed item (in memory and in the journal)."""
        self._add_failure(rec)
        self._write_journal("failure", rec.to_dict())

    def _write_journal(self, kind: str, record: dict[str, Any]) -> None:
        if self._journal is None:
            self.open_journal()
        assert self._journal is not None
        self._journal.write(json.dumps({"kind": kind, "record": record}, ensure_ascii=False) + "\n")
        self._journal.flush()
        self._unsynced += 1
        if self._unsynced >= 32:
            os.fsync(self._journal.fileno())
            self._unsynced = 0

    def compact(self) -> None:
        """Write captions and failures atomically, then drop the journal (safe to replay if interrupted between)."""
        if self._journal is not None:
            self._journal.flush()
            os.fsync(self._journal.fileno())
            self._journal.close()
            self._journal = None
            self._unsynced = 0
        with atomic_open(self.path) as fh:
            for r in self._captions.values():
                fh.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        if self._failures:
            with atomic_open(self.failures_path) as fh:
                for f in self._failures.values():
                    fh.write(json.dumps(f.to_dict(), ensure_ascii=False) + "\n")
        elif self.failures_path.exists():
            self.failures_path.unlink()
        if self.journal_path.exists():
            self.journal_path.unlink()

    def validate(self, identities: Iterable[str]) -> dict[str, list[str]]:
        """Compare with a dataset's identities: ``{"unknown": [...], "missing": [...]}`` (sorted names)."""
        expected = set(identities)
        have = {r.identity for r in self._captions.values()}
        return {"unknown": sorted(have - expected), "missing": sorted(expected - have)}


def open_output_store(path: str | Path, option: str = "--out") -> CaptionStore:
    """Open ``path`` as a caption store to write to, checked before any work starts.

    A new file (under existing or still-to-be-made folders) or an existing caption store (added to, resumed) is
    fine; a folder, a path under a file, or an existing file that is not a caption store is refused with one line
    (:class:`cgclip.errors.ConfigError`), and nothing is changed.
    """
    from cgclip.errors import ConfigError
    from cgclip.io_utils import check_parents

    path = Path(path)
    check_parents(path, option)
    if path.is_dir():
        raise ConfigError(
            f"{option} names a folder; give a caption store file (e.g. {path / 'captions.jsonl'})", path=path
        )
    try:
        return CaptionStore(path)
    except DataError:
        if path.exists() and path.stat().st_size and not _looks_like_store(path):
            raise ConfigError(
                f"{option} names an existing file that is not a caption store; nothing was changed: "
                "choose another path",
                path=path,
            ) from None
        raise


def _looks_like_store(path: Path) -> bool:
    """Whether the first non-empty line of ``path`` is a JSON object with an ``identity`` (a caption record)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            record = json.loads(next((line for line in fh if line.strip()), ""))
        return isinstance(record, dict) and "identity" in record
    except (OSError, ValueError):
        return False
