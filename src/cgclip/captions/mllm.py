"""MLLM captioning: one interface over the served and the local back-end, and the resumable job runner.

* A back-end turns :class:`GenerationTask` s (a prompt, optionally an image) into :class:`GenerationResult` s, one per
  task, in any order: :class:`cgclip.captions.openai_backend.OpenAIBackend` (an OpenAI-compatible endpoint) or
  :class:`cgclip.captions.local_backend.LocalBackend` (a ``transformers`` model from a directory).
* :func:`select_frames` / :func:`frames_from_folder` decide which frames are captioned (every frame, or k evenly
  spaced frames per tracklet), keyed by frame path.
* :func:`run_jobs` skips items the store already has, records each remaining item as exactly one caption or one
  failure (journaled as it goes, so a killed job keeps its work) and compacts the store at the end.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cgclip.captions.store import CaptionRecord, CaptionStore, FailureRecord
from cgclip.data.sampling import evenly_spaced_indices
from cgclip.data.tracklet import Tracklet
from cgclip.errors import CgclipError
from cgclip.progress import progress

logger = logging.getLogger(__name__)

PAPER_PROMPT = (
    "Write a description about the overall appearance of the person in the image, including the attributes:\n"
    "clothes, shoes, hairstyle, gender, belongings.\n"
    "- A man is wearing a white short-sleeved T-shirt and black long pants. His shoes are gray and he has short hair.\n"
    "- A woman with long black hair is dressed in a pink short-sleeved shirt and short navy blue pants. "
    "She is wearing pink sandals."
)
PAPER_PROMPT_ID = "paper-fewshot-v1"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Prompt:
    """A prompt text and the id recorded with every caption it made (resumption matches on it)."""

    text: str
    id: str


def load_prompt(path: str | Path | None = None, prompt_id: str | None = None) -> Prompt:
    """The paper's few-shot prompt, or the text of ``path`` (id: ``prompt_id`` or ``custom-<hash of the text>``)."""
    if path is None:
        return Prompt(PAPER_PROMPT, prompt_id or PAPER_PROMPT_ID)
    p = Path(path)
    if not p.is_file():
        raise CgclipError("prompt file not found; pass a UTF-8 text file with the instruction", path=p)
    text = p.read_text(encoding="utf-8").strip()
    if not text:
        raise CgclipError("prompt file is empty; write the instruction (and examples) into it", path=p)
    return Prompt(text, prompt_id or "custom-" + hashlib.sha1(text.encode()).hexdigest()[:10])


@dataclass(frozen=True)
class GenerationTask:
    """One request to a back-end: ``prompt`` text and an optional ``image`` file; ``key`` identifies the result."""

    key: str
    prompt: str
    image: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    """A back-end's answer to one task: ``text``, or ``error`` (then ``fatal`` says the whole job should stop)."""

    key: str
    text: str | None = None
    error: str | None = None
    attempts: int = 1
    fatal: bool = False


class CaptionBackend(Protocol):
    """What the job runner needs from a back-end."""

    model_name: str

    def generate(self, tasks: Iterable[GenerationTask]) -> Iterator[GenerationResult]:
        """Yield exactly one result per task (in any order); never raise for a single item's failure."""
        ...


def clean_reply(text: Any) -> str:
    """Normalise a model reply: drop list markers, surrounding quotes and repeated whitespace ("" if unusable)."""
    if not isinstance(text, str):
        return ""
    text = re.sub(r"^\s*(?:[-*•]\s+|\d+[.)]\s+)", "", text.strip())
    text = text.strip().strip("\"“”'").strip()
    return " ".join(text.split())


@dataclass(frozen=True)
class FrameItem:
    """A frame to caption: its identity, its tracklet key, its key (path relative to the root) and file path."""

    identity: str
    tracklet: str | None
    frame: str
    path: str


def _locate(frame: str, roots: tuple[str, ...]) -> tuple[str, str]:
    """(key, file path) of a frame: the key is relative to the dataset root when the frame lies under it (however
    the root was spelled), so reruns from another working directory find the same keys."""
    if not roots:
        return Path(frame).as_posix(), frame
    absolute = os.path.abspath(frame)
    for root in roots:
        if absolute.startswith(root + os.sep):
            return Path(absolute[len(root) + 1 :]).as_posix(), absolute
    if os.path.isabs(frame):
        return Path(frame).as_posix(), frame
    return Path(frame).as_posix(), os.path.join(roots[0], frame)


def select_frames(
    tracklets: Sequence[Tracklet], frames_per_tracklet: int | None = None, root: str | Path | None = None
) -> list[FrameItem]:
    """Frames to caption: every frame (``frames_per_tracklet=None``) or k evenly spaced frames per tracklet.

    Frame keys are paths relative to ``root`` (the dataset folder) when the tracklet lists absolute paths under it;
    the tracklet key is the key of its first frame. A frame listed twice is captioned once.
    """
    roots = tuple(dict.fromkeys((os.path.abspath(root), os.path.realpath(root)))) if root is not None else ()
    items: dict[str, FrameItem] = {}
    for t in tracklets:
        if not t.frames:
            continue
        identity = t.identity or str(t.pid)
        if frames_per_tracklet is None or frames_per_tracklet >= len(t.frames):
            chosen = list(t.frames)
        else:
            idx = evenly_spaced_indices(len(t.frames), frames_per_tracklet)
            chosen = [t.frames[int(i)] for i in sorted(set(int(i) for i in idx))]
        tkey = _locate(t.frames[0], roots)[0]
        for frame in chosen:
            key, path = _locate(frame, roots)
            items.setdefault(key, FrameItem(identity, tkey, key, path))
    return list(items.values())


def frames_from_folder(folder: str | Path, frames_per_tracklet: int | None = None) -> list[FrameItem]:
    """Frames of a folder laid out ``FOLDER/<identity>/*.jpg`` or ``FOLDER/<identity>/<tracklet>/*.jpg``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CgclipError("image folder not found; pass FOLDER/<identity>/[<tracklet>/]*.jpg", path=folder)
    tracklets: list[Tracklet] = []
    for ident_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        groups = {ident_dir: sorted(f for f in ident_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)}
        for sub in sorted(p for p in ident_dir.iterdir() if p.is_dir()):
            groups[sub] = sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for files in groups.values():
            if files:
                tracklets.append(Tracklet(tuple(str(f.resolve()) for f in files), 0, 0, identity=ident_dir.name))
    if not tracklets:
        raise CgclipError("no images found; expected FOLDER/<identity>/[<tracklet>/]*.jpg", path=folder)
    return select_frames(tracklets, frames_per_tracklet, folder)


@dataclass(frozen=True)
class Job:
    """One work item: its key in the store, whose caption it makes, and the back-end request."""

    item: str
    identity: str
    task: GenerationTask
    tracklet: str | None = None
    frame: str | None = None


@dataclass
class RunSummary:
    """What a run did: items requested, already done before, captioned now, failed now, and wall time."""

    requested: int = 0
    already_done: int = 0
    captioned: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Items processed per second in this run."""
        return (self.captioned + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON view."""
        return {
            "requested": self.requested,
            "already_done": self.already_done,
            "captioned": self.captioned,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.rate, 3),
        }


def run_jobs(
    jobs: Iterable[Job],
    backend: CaptionBackend,
    store: CaptionStore,
    *,
    source: str,
    prompt_id: str,
    limit: int | None = None,
    desc: str = "captioning",
    postprocess: Callable[[Job, str], str | None] | None = None,
) -> RunSummary:
    """Run the jobs the store does not have yet; each ends as one caption or one failure record.

    ``postprocess(job, text)`` may rewrite a reply or reject it (return None; recorded as a failure). Results are
    journaled as they arrive and the store is compacted at the end, also when interrupted. A fatal back-end error
    (bad API key, unknown model, unreachable server) stops the job with a :class:`CgclipError` after saving.
    """
    start = time.monotonic()
    done = store.done_items(source, prompt_id)
    summary = RunSummary()
    todo: dict[str, Job] = {}
    seen: set[str] = set()
    for job in jobs:
        if job.item in seen:
            continue
        seen.add(job.item)
        summary.requested += 1
        if job.item in done:
            summary.already_done += 1
        elif limit is None or len(todo) < limit:
            todo[job.item] = job
    by_task = {job.task.key: job for job in todo.values()}
    logger.info("%s: %d items, %d already done, %d to run", desc, summary.requested, summary.already_done, len(todo))
    fatal: str | None = None
    store.open_journal()
    bar = progress(total=len(todo), desc=desc, unit="item")
    try:
        for res in backend.generate(job.task for job in todo.values()):
            job = by_task[res.key]
            text = clean_reply(res.text) if res.error is None else ""
            error = res.error or ("empty reply" if not text else None)
            if error is None and postprocess is not None:
                text = postprocess(job, text) or ""
                error = None if text else "reply rejected by the job's check (e.g. a required detail is missing)"
            if error is None:
                rec = CaptionRecord(
                    identity=job.identity,
                    text=text,
                    source=source,
                    tracklet=job.tracklet,
                    frame=job.frame,
                    model=backend.model_name,
                    prompt_id=prompt_id,
                    item=job.item,
                )
                if store.journal_caption(rec):
                    summary.captioned += 1
                else:
                    error = "duplicate of an existing caption"
            if error is not None:
                store.journal_failure(
                    FailureRecord(
                        task=source,
                        item=job.item,
                        identity=job.identity,
                        error=error,
                        tracklet=job.tracklet,
                        frame=job.frame,
                        attempts=res.attempts,
                        model=backend.model_name,
                        prompt_id=prompt_id,
                    )
                )
                summary.failed += 1
            bar.update(1)
            bar.set_postfix(ok=summary.captioned, failed=summary.failed, refresh=False)
            if res.fatal:
                fatal = res.error
                break
    finally:
        bar.close()
        store.compact()
        summary.seconds = time.monotonic() - start
    if fatal is not None:
        raise CgclipError(f"{desc} stopped: {fatal}; fix it and rerun the same command to resume")
    return summary


def frame_jobs(items: Sequence[FrameItem], prompt: Prompt) -> list[Job]:
    """One captioning job per frame (item key = frame key)."""
    return [
        Job(
            item=it.frame,
            identity=it.identity,
            tracklet=it.tracklet,
            frame=it.frame,
            task=GenerationTask(key=it.frame, prompt=prompt.text, image=it.path),
        )
        for it in items
    ]


def caption_frames(
    items: Sequence[FrameItem],
    backend: CaptionBackend,
    store: CaptionStore,
    prompt: Prompt | None = None,
    limit: int | None = None,
) -> RunSummary:
    """Caption ``items`` with ``backend`` into ``store`` (source ``"mllm"``); a rerun captions only what is missing."""
    prompt = prompt or load_prompt()
    return run_jobs(
        frame_jobs(items, prompt),
        backend,
        store,
        source="mllm",
        prompt_id=prompt.id,
        limit=limit,
        desc="captioning frames",
    )
