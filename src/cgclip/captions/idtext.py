"""ID text: the paper's "caption + ID text" identity strategy (SPEC §2.3).

Every caption of an identity gets the sentence "The person's ID is [ID]." appended, which makes the caption set of
each identity unique even when an MLLM gives several people the same description. The text tower reads at most its
context (77 tokens for CLIP) and cuts the rest, so with long captions the sentence would be lost:
:func:`apply_id_text_fitted` shortens each caption body by tokens so that the ID sentence always fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ID_TEXT_TEMPLATE = "The person's ID is {identity}."


def id_text(identity: str, template: str = ID_TEXT_TEMPLATE) -> str:
    """The ID sentence for ``identity`` (the identity name as given)."""
    return template.format(identity=identity)


def apply_id_text(captions: Sequence[str], identity: str, template: str = ID_TEXT_TEMPLATE) -> list[str]:
    """Append the ID sentence to every caption of ``identity``; an identity without captions gets the sentence alone.

    A caption that already ends with the sentence is left as it is, so applying twice changes nothing.
    """
    sentence = id_text(identity, template)
    if not captions:
        return [sentence]
    out = []
    for caption in captions:
        text = caption.strip()
        if text.endswith(sentence):
            out.append(text)
            continue
        if text and text[-1] not in ".!?":
            text += "."
        out.append(f"{text} {sentence}" if text else sentence)
    return out


def token_count(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` with the tokenizer's special tokens (start / end), as the text tower sees them."""
    return len(tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])


def _join(body: str, sentence: str) -> str:
    body = body.strip()
    if body and body[-1] not in ".!?":
        body += "."
    return f"{body} {sentence}" if body else sentence


def fit_id_text(caption: str, sentence: str, tokenizer: Any, max_length: int) -> tuple[str, bool]:
    """``caption`` followed by ``sentence``, with the caption body cut by tokens so that the whole text fits
    ``max_length`` tokens (special tokens included): the ID sentence always survives the text tower's truncation.

    Returns the text and whether the body was shortened. Works for any Hugging Face tokenizer (it needs
    ``__call__`` and ``decode``).
    """
    text = _join(caption, sentence)
    excess = token_count(tokenizer, text) - int(max_length)
    if excess <= 0:
        return text, False
    ids = tokenizer(caption.strip(), add_special_tokens=False, verbose=False)["input_ids"]
    keep = len(ids) - excess
    while keep > 0:  # decoding and re-tokenising can merge differently: re-check, drop one more token if needed
        candidate = _join(tokenizer.decode(ids[:keep], skip_special_tokens=True), sentence)
        if token_count(tokenizer, candidate) <= max_length:
            return candidate, True
        keep -= 1
    return sentence, True


def apply_id_text_fitted(
    captions: Sequence[str], identity: str, tokenizer: Any, max_length: int, template: str = ID_TEXT_TEMPLATE
) -> tuple[list[str], int]:
    """:func:`apply_id_text` whose captions are shortened (:func:`fit_id_text`) to fit the tokenizer's context.

    Returns the texts and how many of them were shortened.
    """
    sentence = id_text(identity, template)
    out, shortened = [], 0
    for text in apply_id_text(captions, identity, template):
        body = text[: -len(sentence)] if text.endswith(sentence) else text
        fitted, cut = fit_id_text(body, sentence, tokenizer, max_length)
        out.append(fitted)
        shortened += int(cut)
    return out, shortened


def over_context(texts: Sequence[str], tokenizer: Any, max_length: int) -> int:
    """How many of ``texts`` exceed ``max_length`` tokens (and would be truncated by the text tower)."""
    return sum(token_count(tokenizer, t) > max_length for t in texts)
