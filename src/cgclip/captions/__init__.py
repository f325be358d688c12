"""Captions for CG-CLIP's Text Memory: the caption store, annotation captions and paraphrases, MLLM captioning
(an OpenAI-compatible endpoint or a local ``transformers`` model), augmentation, ID text, a quality report and a
CLIP attribute captioner.

The contract other packages use is :func:`load_identity_captions` (and :func:`apply_id_text` for the ID-text option).
"""

from cgclip.captions.idtext import ID_TEXT_TEMPLATE, apply_id_text, id_text
from cgclip.captions.load import annotation_records, load_identity_captions
from cgclip.captions.store import SOURCES, CaptionRecord, CaptionStore, FailureRecord

__all__ = [
    "ID_TEXT_TEMPLATE",
    "SOURCES",
    "CaptionRecord",
    "CaptionStore",
    "FailureRecord",
    "annotation_records",
    "apply_id_text",
    "id_text",
    "load_identity_captions",
]
