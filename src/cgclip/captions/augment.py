"""Caption-to-caption work through a back-end: augmentation (paraphrasing captions, the paper's step for MARS),
LLM paraphrases of annotation descriptions, and translation of annotations written in another language.

All three go through :class:`cgclip.captions.mllm.CaptionBackend` (the OpenAI-compatible endpoint or a local model)
with text-only tasks. Augmentation and LLM paraphrasing are jobs of :func:`cgclip.captions.mllm.run_jobs`: resumable,
one caption or one failure per item.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from cgclip.captions.mllm import CaptionBackend, GenerationTask, Job, RunSummary, run_jobs
from cgclip.captions.store import CaptionStore

logger = logging.getLogger(__name__)

AUGMENT_PROMPT = (
    "Paraphrase the following description of a person. Keep every detail (clothes and their colours, numbers, "
    "shoes, hairstyle, gender, belongings) and add nothing new. Reply with the paraphrase only, in one or two "
    "sentences.{variant}\nDescription: {text}"
)
PARAPHRASE_PROMPT = (
    "Rewrite the following description of a person in different words and a different sentence structure. "
    "Keep these exact phrases unchanged: {values}. Add nothing new. Reply with the rewritten description only."
    "{variant}\nDescription: {text}"
)
TRANSLATE_PROMPT = (
    "Translate this annotation of a person's {attribute} into {language}. Reply with the translation only, as a "
    "short phrase.\n{value}"
)


def _variant(k: int) -> str:
    return "" if k == 0 else f" Give variant number {k + 1}, worded differently from a plain restatement."


def _digest(*parts: str | None) -> str:
    return hashlib.sha1("\x00".join(p or "" for p in parts).encode("utf-8")).hexdigest()[:16]


def prompt_id_of(template: str, name: str) -> str:
    """``name`` for the built-in template, else ``custom-<hash>``."""
    builtin = {"augment-v1": AUGMENT_PROMPT, "llm-paraphrase-v1": PARAPHRASE_PROMPT}
    return name if builtin.get(name) == template else "custom-" + hashlib.sha1(template.encode()).hexdigest()[:10]


def augment_captions(
    store: CaptionStore,
    backend: CaptionBackend,
    *,
    sources: Iterable[str] = ("mllm",),
    per_caption: int = 1,
    template: str = AUGMENT_PROMPT,
    limit: int | None = None,
) -> RunSummary:
    """Add ``per_caption`` paraphrases (source ``"augment"``) of every caption of ``sources`` in ``store``.

    The paraphrase keeps the original's identity, tracklet and frame. ``template`` has ``{text}`` and ``{variant}``
    fields. Resumable: a rerun only asks for paraphrases not made yet.
    """
    allowed = set(sources)
    prompt_id = prompt_id_of(template, "augment-v1")
    jobs = []
    for rec in store.captions:
        if rec.source not in allowed:
            continue
        base = _digest(rec.identity, rec.tracklet, rec.frame, rec.source, rec.text)
        for k in range(per_caption):
            item = f"augment:{base}:{k}"
            jobs.append(
                Job(
                    item=item,
                    identity=rec.identity,
                    tracklet=rec.tracklet,
                    frame=rec.frame,
                    task=GenerationTask(key=item, prompt=template.format(text=rec.text, variant=_variant(k))),
                )
            )
    if not jobs:
        logger.warning("no captions of source %s in %s to augment", ", ".join(sorted(allowed)), store.path)
    return run_jobs(
        jobs, backend, store, source="augment", prompt_id=prompt_id, limit=limit, desc="augmenting captions"
    )


def llm_paraphrase(
    store: CaptionStore,
    backend: CaptionBackend,
    descriptions: Mapping[str, tuple[str, Sequence[str]]],
    n: int = 9,
    template: str = PARAPHRASE_PROMPT,
) -> RunSummary:
    """Ask the back-end for ``n`` paraphrases of each identity's description (source ``"paraphrase"``).

    ``descriptions`` maps identity → (canonical description, attribute values). A reply that drops any value (case
    is ignored) is rejected and recorded as a failure, so every stored paraphrase still names every attribute.
    """
    prompt_id = prompt_id_of(template, "llm-paraphrase-v1")
    jobs = []
    for identity, (text, values) in descriptions.items():
        quoted = ", ".join(f'"{v}"' for v in values) or "(none)"
        for k in range(n):
            item = f"paraphrase:{identity}:{_digest(text)}:{k}"
            prompt = template.format(text=text, values=quoted, variant=_variant(k))
            jobs.append(Job(item=item, identity=identity, task=GenerationTask(key=item, prompt=prompt)))

    def keeps_values(job: Job, reply: str) -> str | None:
        lowered = reply.lower()
        values = descriptions[job.identity][1]
        return reply if all(v.lower() in lowered for v in values) else None

    return run_jobs(
        jobs, backend, store, source="paraphrase", prompt_id=prompt_id, desc="paraphrasing", postprocess=keeps_values
    )


def needs_translation(value: str) -> bool:
    """A value with non-ASCII letters (e.g. Japanese) is translated; plain ASCII is taken to be English already."""
    return bool(value.strip()) and not value.isascii()


def translate_attributes(
    rows: Sequence,
    backend: CaptionBackend,
    language: str = "English",
    translate_all: bool = False,
    template: str = TRANSLATE_PROMPT,
) -> tuple[list, list[str]]:
    """Translate the attribute values of identity-table rows (``IdentityRecord``) through the back-end.

    Each distinct (attribute, value) is asked once. Returns (translated rows, failures); a value whose translation
    failed is kept as it was and named in ``failures`` ("attribute=value: error").
    """
    wanted: dict[str, tuple[str, str]] = {}
    for row in rows:
        for attr, value in row.attributes.items():
            if value and (translate_all or needs_translation(value)):
                wanted.setdefault(f"{attr}\x00{value}", (attr, value))
    tasks = [
        GenerationTask(key=key, prompt=template.format(attribute=attr, value=value, language=language))
        for key, (attr, value) in wanted.items()
    ]
    translated: dict[str, str] = {}
    failures: list[str] = []
    for res in backend.generate(tasks):
        text = (res.text or "").strip().rstrip(".")
        if res.error is None and text:
            translated[res.key] = text
        else:
            attr, value = wanted[res.key]
            failures.append(f"{attr}={value}: {res.error or 'empty reply'}")
    out = []
    for row in rows:
        attrs = {a: translated.get(f"{a}\x00{v}", v) for a, v in row.attributes.items()}
        out.append(replace(row, attributes=attrs))
    logger.info("translated %d of %d attribute values", len(translated), len(wanted))
    return out, failures
