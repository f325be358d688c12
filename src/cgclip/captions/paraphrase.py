"""Rule-based paraphrases of an identity's annotation: N distinct captions, no model needed.

Each caption picks a sentence structure (eight of them, cycled in a seeded order so that the set mixes structures),
a random order of the attributes and a random wording of each (:mod:`cgclip.captions.templates`). Every caption
still contains every annotated value verbatim. Output is deterministic for a given (identity, seed).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Mapping

from cgclip.captions.templates import (
    Fact,
    Person,
    build_person,
    capitalize,
    describe,
    join_list,
    strip_article,
    with_article,
)

logger = logging.getLogger(__name__)

_LIST_LABELS = ("visible details", "appearance", "key features", "notable traits", "distinguishing features")
_SPOT_VERBS = ("You can recognize", "You can spot", "One can identify", "Look for")


def _rng(identity: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{identity}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _subject(person: Person, rng: random.Random) -> str:
    """A later sentence's subject: the pronoun, or "the/this <noun>"."""
    return rng.choice([person.subject, person.subject, f"the {person.noun}", f"this {person.noun}"])


def _scene(person: Person, rng: random.Random) -> str:
    return f" {rng.choice(person.scene_mods)}" if person.scene_mods else ""


def _chunks(items: list[str], rng: random.Random) -> list[list[str]]:
    """Split ``items`` into consecutive groups of 2 or 3."""
    out, i = [], 0
    while i < len(items):
        n = rng.choice((2, 3))
        out.append(items[i : i + n])
        i += n
    return out


def _also(pred: str) -> str:
    """ "is tall" → "is also tall"; "wears a cap" → "also wears a cap"."""
    return f"is also {pred[3:]}" if pred.startswith("is ") else f"also {pred}"


def _pred_sentences(
    person: Person, preds: list[str], first_subject: str, rng: random.Random, also_at: int | None = None
) -> list[str]:
    """Sentences of 2–3 predicates each; the sentence number ``also_at`` gets "also"."""
    sentences = []
    for j, group in enumerate(_chunks(preds, rng)):
        subject = first_subject if j == 0 else _subject(person, rng)
        if j == also_at:
            group = [_also(group[0]), *group[1:]]
        sentences.append(capitalize(f"{subject} {join_list(group)}."))
    return sentences


def _s_chain(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    intro = f"{rng.choice(['a', 'this', 'the'])} {p.noun}{_scene(p, rng)}"
    if rng.random() < 0.5 and intro.startswith("a "):
        intro = with_article(p.noun) + intro[len("a ") + len(p.noun) :]
    preds = [rng.choice(f.preds) for f in facts]
    return _pred_sentences(p, preds, intro, rng, also_at=1) if preds else [capitalize(intro) + "."]


def _s_mods(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    mods = sorted((rng.choice(f.mods) for f in facts), key=lambda m: m.startswith("who "))
    head = f"{with_article(p.noun)}{_scene(p, rng)}"
    return [capitalize(f"{head}, {join_list(mods)}." if mods else f"{head}.")]


def _s_there(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    preds = [rng.choice(f.preds) for f in facts]
    head = f"there is {with_article(p.noun)}{_scene(p, rng)}"
    if not preds:
        return [capitalize(head) + "."]
    first, rest = preds[:2], preds[2:]
    out = [capitalize(f"{head} who {join_list(first)}.")]
    if rest:
        out += _pred_sentences(p, rest, p.subject, rng, also_at=0)
    return out


def _s_opener(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    if not facts:
        return _s_chain(p, facts, rng)
    opener = rng.choice(facts[0].mods)
    preds = [rng.choice(f.preds) for f in facts[1:]]
    subject = f"{rng.choice(['the', 'this'])} {p.noun}{_scene(p, rng)}"
    if not preds:
        return [capitalize(f"{opener}, {subject} is in view.")]
    first = _pred_sentences(p, preds, subject, rng)
    first[0] = capitalize(f"{opener}, {first[0][0].lower()}{first[0][1:]}")
    return first


def _s_list(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    head = capitalize(f"{with_article(p.noun)}{_scene(p, rng)}.")
    if not facts:
        return [head]
    items = [rng.choice(f.bare) for f in facts]
    return [head, f"{capitalize(rng.choice(_LIST_LABELS))}: {join_list(items)}."]


def _s_this_is(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    head = f"this is {with_article(p.noun)}{_scene(p, rng)}"
    if not facts:
        return [capitalize(head) + "."]
    out = [capitalize(f"{head} {rng.choice(facts[0].mods)}.")]
    preds = [rng.choice(f.preds) for f in facts[1:]]
    if preds:
        out += _pred_sentences(p, preds, _subject(p, rng), rng)
    return out


def _s_spot(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    if len(facts) < 2:
        return _s_this_is(p, facts, rng)
    k = min(len(facts), rng.choice((2, 3)))
    verb = rng.choice(_SPOT_VERBS)
    items = [_definite(f, rng.choice(f.bare)) for f in facts[:k]]
    if verb == "Look for":
        out = [f"Look for {join_list(items)}: that is {with_article(p.noun)}{_scene(p, rng)}."]
    else:
        out = [f"{verb} this {p.noun}{_scene(p, rng)} by {join_list(items)}."]
    preds = [rng.choice(f.preds) for f in facts[k:]]
    if preds:
        out += _pred_sentences(p, preds, p.subject, rng, also_at=0)
    return out


def _definite(fact: Fact, bare: str) -> str:
    """ "the <bare>", unless the annotated value brings its own article ("a black headband" stays verbatim)."""
    return bare if strip_article(fact.value) != fact.value else f"the {strip_article(bare)}"


def _s_scene_first(p: Person, facts: list[Fact], rng: random.Random) -> list[str]:
    lead = rng.choice(p.scene_mods) if p.scene_mods else rng.choice(["in this image", "in the picture", "here"])
    preds = [rng.choice(f.preds) for f in facts]
    if not preds:
        return [capitalize(f"{lead}, there is {with_article(p.noun)}.")]
    groups = _chunks(preds, rng)
    out = [capitalize(f"{lead}, {with_article(p.noun)} {join_list(groups[0])}.")]
    for group in groups[1:]:
        out.append(capitalize(f"{_subject(p, rng)} {join_list(group)}."))
    return out


STRUCTURES: tuple[Callable[[Person, list[Fact], random.Random], list[str]], ...] = (
    _s_chain,
    _s_mods,
    _s_there,
    _s_opener,
    _s_list,
    _s_this_is,
    _s_spot,
    _s_scene_first,
)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def paraphrase(
    attributes: Mapping[str, str],
    identity: str,
    n: int = 10,
    seed: int = 0,
    include_canonical: bool = True,
    max_tries: int = 400,
) -> list[str]:
    """``n`` distinct captions of one identity's annotation (the canonical description first if asked).

    Deterministic for (attributes, identity, seed). Fewer than ``n`` come back only when the annotation is too sparse
    to say ``n`` different ways (e.g. nothing but a gender); that is logged.
    """
    person = build_person(attributes)
    rng = _rng(identity, seed)
    out: list[str] = [describe(attributes)] if include_canonical and n > 0 else []
    seen = {_normalise(t) for t in out}
    order = list(STRUCTURES)
    rng.shuffle(order)
    standalone = [f for f in person.facts if f.standalone]
    plain = [f for f in person.facts if not f.standalone]
    tries = 0
    while len(out) < n and tries < max_tries:
        structure = order[tries % len(order)]
        tries += 1
        facts = list(plain)
        rng.shuffle(facts)
        sentences = structure(person, facts, rng)
        extra = [rng.choice(f.sentences) for f in standalone]
        rng.shuffle(extra)
        if extra:
            pos = rng.randint(1, len(sentences))
            sentences = sentences[:pos] + extra + sentences[pos:]
        text = " ".join(sentences)
        if _normalise(text) not in seen:
            seen.add(_normalise(text))
            out.append(text)
    if len(out) < n:
        logger.warning(
            "identity %s: only %d distinct captions from its annotation (asked for %d); annotate more "
            "attributes for more variety",
            identity,
            len(out),
            n,
        )
    return out
