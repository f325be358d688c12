"""ID text: the paper's "caption + ID text" identity strategy (SPEC §2.3).

Every caption of an identity gets the sentence "The person's ID is [ID]." appended, which makes the caption set of
each identity unique even when an MLLM gives several people the same description.
"""

from __future__ import annotations

from typing import Sequence

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
