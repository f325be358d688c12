"""Annotation → caption phrases: how each attribute of the identity table is said in English.

An identity's annotation (``scene``, ``gender``, ``uniform``, ``number``, ``hair``, ``shoes``, ``socks``, ``build``,
``accessories``, ``others`` and any extra column) becomes a :class:`Person`: a noun and pronouns from the gender, scene
phrases, and one :class:`Fact` per other annotated attribute. A fact offers several wordings in three roles — a verb
phrase (``preds``: "wears white sneakers"), a noun modifier (``mods``: "in white sneakers") and a bare noun phrase for
lists (``bare``) — and every wording contains the annotated value verbatim. :func:`describe` writes the canonical
description; :mod:`cgclip.captions.paraphrase` combines the wordings into paraphrases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

STANDARD_ORDER = ("uniform", "number", "hair", "shoes", "socks", "build", "accessories")
"""Attributes rendered as facts, in the canonical order (extra columns and ``others`` follow)."""
NOT_FACTS = ("scene", "gender", "split", "identity_id")

_DETERMINERS = {"a", "an", "the", "his", "her", "their", "one", "two", "some", "no", "this", "that", "each"}
_MASS_NOUNS = {"hair", "clothing", "clothes", "makeup", "gear", "equipment", "attire", "sportswear", "apparel"}
_SPORTS = {
    "soccer",
    "football",
    "basketball",
    "volleyball",
    "handball",
    "hockey",
    "rugby",
    "baseball",
    "tennis",
    "badminton",
    "cricket",
    "futsal",
    "netball",
    "water polo",
}
_DANCES = {
    "hip-hop",
    "hip hop",
    "ballet",
    "jazz",
    "pop",
    "breakdance",
    "breaking",
    "k-pop",
    "contemporary",
    "modern",
    "salsa",
    "tap",
    "street dance",
    "house",
    "locking",
    "popping",
    "waacking",
    "krump",
    "tango",
}
_MALE = {"man", "boy", "male", "gentleman", "guy"}
_FEMALE = {"woman", "girl", "female", "lady"}
_NOUNS = {"man", "woman", "boy", "girl", "person", "player", "dancer", "child", "adult", "gentleman", "lady", "guy"}


def with_article(value: str) -> str:
    """``value`` as a noun phrase: "red jersey" → "a red jersey"; plurals, mass nouns, determiners stay as they are."""
    v = value.strip()
    if not v or not v.isascii():
        return v
    first = v.split()[0].lower()
    if first in _DETERMINERS or first[0].isdigit():
        return v
    head_part = re.split(r"\s+(?:with|and|on|in|of|over|under)\s+|,", v, maxsplit=1)[0].split()
    head = head_part[-1].lower() if head_part else first
    if head in _MASS_NOUNS or (head.endswith("s") and not head.endswith("ss")):
        return v
    vowel = first[0] in "aeiou" and not re.match(r"(uni|use|eu|one|ur)", first)
    return ("an " if vowel or first.startswith(("hour", "honest")) else "a ") + v


def strip_article(np: str) -> str:
    """Remove a leading "a"/"an"/"the" (for "by the …" wordings)."""
    return re.sub(r"^(a|an|the)\s+", "", np.strip(), flags=re.IGNORECASE)


@dataclass(frozen=True)
class Fact:
    """One annotated attribute and its wordings (each contains ``value`` verbatim)."""

    attr: str
    value: str
    preds: tuple[str, ...] = ()
    mods: tuple[str, ...] = ()
    bare: tuple[str, ...] = ()
    sentences: tuple[str, ...] = ()

    @property
    def standalone(self) -> bool:
        """Free-text facts (``others``, unknown columns) are said as sentences of their own."""
        return bool(self.sentences) and not self.preds


@dataclass(frozen=True)
class Person:
    """What the sentences talk about: gender noun and pronouns, scene wordings and the attribute facts."""

    noun: str
    subject: str
    possessive: str
    scene_mods: tuple[str, ...]
    facts: tuple[Fact, ...]


def _scene_mods(scene: str) -> tuple[str, ...]:
    key = scene.lower()
    if key in _SPORTS or key.endswith("ball"):
        return (
            f"playing {scene}",
            f"in a {scene} game",
            f"on the {scene} court" if "basket" in key else f"on the {scene} field",
            f"during a {scene} match",
        )
    if key in _DANCES or "dance" in key:
        return (f"dancing {scene}", f"performing {scene}", f"in a {scene} dance group", f"during a {scene} routine")
    return (f"in a {scene} scene", f"seen at {scene}", f"from the {scene} footage", f"during {scene}")


def _gender(value: str) -> tuple[str, str, str]:
    """(noun, subject, possessive) for a gender value; the noun contains the value verbatim."""
    key = value.lower()
    noun = value if key in _NOUNS else (f"{value} person" if value else "person")
    if key in _MALE:
        return noun, "he", "his"
    if key in _FEMALE:
        return noun, "she", "her"
    return noun, f"the {noun}", "their"


def _fact(attr: str, value: str, garment: str) -> Fact:
    """The wordings of one attribute."""
    np = with_article(value)
    if attr == "number":
        return Fact(
            attr,
            value,
            preds=(
                f"has the number {value} on the {garment}",
                f"wears the number {value}",
                f"wears number {value}",
                f"carries the number {value}",
            ),
            mods=(f"with the number {value}", f"wearing number {value}", f"with number {value} on the {garment}"),
            bare=(f"number {value}", f"the number {value} on the {garment}"),
        )
    if attr == "uniform":
        return Fact(
            attr,
            value,
            preds=(f"is wearing {np}", f"wears {np}", f"is dressed in {np}", f"has on {np}"),
            mods=(f"in {np}", f"wearing {np}", f"dressed in {np}"),
            bare=(np,),
        )
    if attr == "hair":
        if len(value.split()) == 1 and "hair" not in value.lower() and value.lower() not in _DETERMINERS:
            return Fact(
                attr,
                value,
                preds=(f"is {value}", f"looks {value}"),
                mods=(f"who is {value}",),
                bare=(f"a {value} head",),
            )
        return Fact(
            attr,
            value,
            preds=(f"has {np}", f"sports {np}", f"is seen with {np}"),
            mods=(f"with {np}", f"sporting {np}"),
            bare=(np,),
        )
    if attr in ("shoes", "socks"):
        return Fact(
            attr,
            value,
            preds=(f"wears {np}", f"is wearing {np}", f"has on {np}", f"is in {np}"),
            mods=(f"in {np}", f"wearing {np}", f"with {np}"),
            bare=(np,),
        )
    if attr == "build":
        if "build" in value.lower() or value.lower().split()[0] in _DETERMINERS:
            return Fact(attr, value, preds=(f"has {np}",), mods=(f"with {np}",), bare=(np,))
        return Fact(
            attr,
            value,
            preds=(f"is {value}", f"looks {value}", f"has a {value} build"),
            mods=(f"who is {value}", f"with a {value} build"),
            bare=(f"a {value} build",),
        )
    if attr == "accessories":
        return Fact(
            attr,
            value,
            preds=(f"wears {np}", f"has {np}", f"is wearing {np}"),
            mods=(f"with {np}", f"wearing {np}"),
            bare=(np,),
        )
    if attr == "others":
        return Fact(
            attr, value, sentences=(f"Other details: {value}.", f"Also noted: {value}.", f"Additional detail: {value}.")
        )
    label = attr.replace("_", " ").strip()
    return Fact(
        attr,
        value,
        sentences=(f"The {label} is {value}.", f"{label[:1].upper()}{label[1:]}: {value}.", f"Noted {label}: {value}."),
    )


def build_person(attributes: Mapping[str, str]) -> Person:
    """Turn one identity's attributes (column → value; empty = not annotated) into a :class:`Person`."""
    attrs = {k: (v or "").strip() for k, v in attributes.items() if k not in ("split", "identity_id")}
    noun, subject, possessive = _gender(attrs.get("gender", ""))
    scene = attrs.get("scene", "")
    garment = "jersey" if "jersey" in attrs.get("uniform", "").lower() else "back"
    ordered = [a for a in STANDARD_ORDER if attrs.get(a)]
    ordered += [a for a in attrs if a not in STANDARD_ORDER and a not in NOT_FACTS and a != "others" and attrs[a]]
    if attrs.get("others"):
        ordered.append("others")
    facts = tuple(_fact(a, attrs[a], garment) for a in ordered)
    return Person(
        noun=noun, subject=subject, possessive=possessive, scene_mods=_scene_mods(scene) if scene else (), facts=facts
    )


def capitalize(sentence: str) -> str:
    """Upper-case the first character (sentences always start with a template word, never with a value)."""
    return sentence[:1].upper() + sentence[1:]


def join_list(parts: list[str], conj: str = "and") -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {conj} {parts[-1]}"


def describe(attributes: Mapping[str, str]) -> str:
    """The canonical description: every annotated value, in the table's order, two facts per sentence.

    Example: "A man playing soccer is wearing a red jersey with white shorts and has the number 23 on the jersey.
    He has short black hair and wears white sneakers. ..."
    """
    person = build_person(attributes)
    facts = [f for f in person.facts if not f.standalone]
    intro = with_article(person.noun)
    if person.scene_mods:
        intro += f" {person.scene_mods[0]}"
    sentences = []
    if not facts:
        sentences.append(capitalize(intro) + ".")
    for i in range(0, len(facts), 2):
        subject = intro if i == 0 else person.subject
        sentences.append(capitalize(f"{subject} {join_list([f.preds[0] for f in facts[i : i + 2]])}."))
    sentences += [f.sentences[0] for f in person.facts if f.standalone]
    return " ".join(sentences)
