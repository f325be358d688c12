"""Identities of the synthetic world: teams / dance groups, their shared uniform, and the small cues per person.

An :class:`Identity` carries both the table row (plain English attribute values, usable in captions) and the
:class:`Look` the renderer draws; both are built from the same named choices in :mod:`cgclip.synth.palette`, so the
table describes exactly what is rendered.

Members of one team or group share a uniform (sports) or costume (dance) and a *base* look; each member changes one or
two cues of that base (hair, shoes, socks, build, accessories; skin in sports), and no two members of a group have the
same combination, so the number (sports) and one or two small cues are what tell teammates apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cgclip.errors import CgclipError
from cgclip.synth import palette as P

logger = logging.getLogger(__name__)

TABLE_COLUMNS = [
    "identity_id",
    "split",
    "scene",
    "gender",
    "uniform",
    "number",
    "hair",
    "shoes",
    "socks",
    "build",
    "accessories",
    "others",
]
KINDS = ("sports", "dance")


@dataclass(frozen=True)
class Look:
    """Everything the renderer needs to draw one person (colours as RGB, styles as keywords)."""

    scene: str
    gender: str
    skin: P.RGB
    height: float
    width: float
    top_style: str  # jersey | tee | hoodie | tank | leotard | top
    sleeves: str  # short | none | long
    shirt: P.RGB
    pattern: str  # plain | stripes | band
    pattern_rgb: P.RGB
    bottom: P.RGB
    bottom_style: str  # shorts | long shorts | skirt | tutu | cropped
    number: str
    number_rgb: P.RGB
    hair_style: str
    hair_rgb: P.RGB
    shoe_rgb: P.RGB
    sock_rgb: P.RGB
    sock_length: str  # long | short
    accessories: tuple[tuple[str, P.RGB], ...]


@dataclass(frozen=True)
class Identity:
    """One synthetic person: table attributes (plain English) plus the :class:`Look` that is rendered."""

    identity_id: str
    split: str
    group: str
    scene: str
    gender: str
    uniform: str
    number: str
    hair: str
    shoes: str
    socks: str
    build: str
    accessories: str
    others: str
    look: Look

    def row(self) -> dict[str, str]:
        """The identity-table row, keyed by :data:`TABLE_COLUMNS`."""
        return {column: str(getattr(self, column)) for column in TABLE_COLUMNS}


@dataclass(frozen=True)
class _Uniform:
    key: tuple
    text: str
    top_style: str
    sleeves: str
    shirt: str
    pattern: str
    pattern_colour: str
    bottom: str
    bottom_style: str


def _luma(rgb: P.RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _pick(rng: np.random.Generator, options: list, p: list[float] | None = None):
    return options[int(rng.choice(len(options), p=p))]


def _sports_uniform(scene: str, rng: np.random.Generator) -> _Uniform:
    shirt = _pick(rng, P.JERSEY_COLOURS)
    shorts = shirt if rng.random() < 0.2 else _pick(rng, [c for c in P.JERSEY_COLOURS if c != shirt])
    pattern = _pick(rng, ["plain", "stripes", "band"], [0.55, 0.25, 0.2])
    second = _pick(rng, [c for c in P.JERSEY_COLOURS if c != shirt]) if pattern != "plain" else shirt
    sleeves = P.SCENE_STYLE[scene]["sleeves"]
    noun = "sleeveless jersey" if sleeves == "none" else "jersey"
    if pattern == "stripes":
        text = f"{shirt} and {second} striped {noun} with {shorts} shorts"
    elif pattern == "band":
        text = f"{shirt} {noun} with {P.with_article(second)} chest band and {shorts} shorts"
    else:
        text = f"{shirt} {noun} with {shorts} shorts"
    bottom_style = "long shorts" if scene == "basketball" else "shorts"
    return _Uniform(
        (shirt, pattern, second, shorts), text, "jersey", sleeves, shirt, pattern, second, shorts, bottom_style
    )


def _dance_costume(genre: str, rng: np.random.Generator) -> _Uniform:
    top_style, sleeves, bottom_style, template = _pick(rng, P.DANCE_COSTUMES[genre])
    top = _pick(rng, list(P.CLOTH))
    bottom = _pick(rng, [c for c in P.CLOTH if c != top])
    text = template.format(t=top, b=bottom).replace("a orange", "an orange")
    return _Uniform(
        (genre, top_style, top, bottom, bottom_style), text, top_style, sleeves, top, "plain", top, bottom, bottom_style
    )


def _sample_hair(gender: str, rng: np.random.Generator) -> tuple[str, str]:
    styles, weights = P.HAIR_BY_GENDER[gender]
    style = _pick(rng, styles, weights)
    colour = _pick(rng, list(P.HAIR_COLOURS), [0.34, 0.2, 0.16, 0.16, 0.08, 0.06])
    return style, ("" if style == "shaved" else colour)


def _sample_accessories(scene: str, rng: np.random.Generator, n: int) -> tuple[tuple[str, str], ...]:
    kinds = list(rng.choice(P.SCENE_STYLE[scene]["accessories"], size=n, replace=False))
    return tuple(sorted((str(k), _pick(rng, P.BAND_COLOURS)) for k in kinds))


def _resample(cue: str, base: dict, scene: str, gender: str, rng: np.random.Generator) -> dict:
    """Change one cue of ``base`` to a different value; returns the changed entries."""
    for _ in range(50):
        if cue == "hair":
            value = _sample_hair(gender, rng)
        elif cue == "shoes":
            value = _pick(rng, P.SHOE_COLOURS)
        elif cue == "socks":
            length = base["socks"][0] if rng.random() < 0.6 else ("short" if base["socks"][0] == "long" else "long")
            value = (length, _pick(rng, P.SOCK_COLOURS))
        elif cue == "build":
            value = (_pick(rng, list(P.HEIGHTS)), _pick(rng, list(P.WIDTHS)))
        elif cue == "accessories":
            value = _sample_accessories(scene, rng, 1 if rng.random() < 0.8 else 2)
        elif cue == "skin":
            value = _pick(rng, list(P.SKIN_TONES))
        else:  # pragma: no cover - internal
            raise ValueError(cue)
        if value != base[cue]:
            return {cue: value}
    return {}


def _member_look(kind: str, scene: str, uniform: _Uniform, attrs: dict, number: str) -> tuple[Look, dict[str, str]]:
    style = P.SCENE_STYLE[scene]
    hair_style, hair_colour = attrs["hair"]
    sock_length, sock_colour = attrs["socks"]
    h_word, w_word = attrs["build"]
    shirt_rgb = P.CLOTH[uniform.shirt]
    look = Look(
        scene=scene,
        gender=attrs["gender"],
        skin=P.SKIN_TONES[attrs["skin"]],
        height=P.HEIGHTS[h_word],
        width=P.WIDTHS[w_word],
        top_style=uniform.top_style,
        sleeves=uniform.sleeves,
        shirt=shirt_rgb,
        pattern=uniform.pattern,
        pattern_rgb=P.CLOTH[uniform.pattern_colour],
        bottom=P.CLOTH[uniform.bottom],
        bottom_style=uniform.bottom_style,
        number=number,
        number_rgb=P.CLOTH["black"] if _luma(shirt_rgb) > 150 else P.CLOTH["white"],
        hair_style=hair_style,
        hair_rgb=P.HAIR_COLOURS.get(hair_colour, (0, 0, 0)),
        shoe_rgb=P.CLOTH[attrs["shoes"]],
        sock_rgb=P.CLOTH[sock_colour],
        sock_length=sock_length,
        accessories=tuple((k, P.CLOTH["gold"] if k == "necklace" else P.CLOTH[c]) for k, c in attrs["accessories"]),
    )
    text = {
        "scene": scene,
        "gender": attrs["gender"],
        "uniform": uniform.text,
        "number": number,
        "hair": P.HAIR_STYLES[hair_style].format(c=hair_colour),
        "shoes": f"{attrs['shoes']} {style['shoe']}",
        "socks": f"{sock_length} {sock_colour} socks",
        "build": P.BUILD_TEXT[(h_word, w_word)],
        "accessories": P.join_phrases([P.accessory_text(k, c) for k, c in attrs["accessories"]]),
        "others": attrs["skin"],
    }
    return look, text


def sample_group(
    kind: str,
    scene: str,
    size: int,
    rng: np.random.Generator,
    *,
    split: str,
    group: str,
    first_index: int,
    taken_uniforms: set | None = None,
) -> list[Identity]:
    """Sample one team (``kind="sports"``) or dance group of ``size`` identities sharing a uniform/costume.

    Identity ids are ``f"{kind}-{index:04d}"`` for consecutive indices from ``first_index``. ``taken_uniforms``
    (updated in place) keeps uniforms distinct between groups.
    """
    if kind not in KINDS:
        raise CgclipError(f"unknown synthetic world kind {kind!r}; use one of {', '.join(KINDS)}")
    taken = taken_uniforms if taken_uniforms is not None else set()
    for _ in range(200):
        uniform = _sports_uniform(scene, rng) if kind == "sports" else _dance_costume(scene, rng)
        if uniform.key not in taken:
            break
    taken.add(uniform.key)
    style = P.SCENE_STYLE[scene]
    mixed = kind == "dance" and rng.random() < 0.35
    team_gender = _pick(rng, ["man", "woman"])
    base_skin = _pick(rng, list(P.SKIN_TONES))
    base_hair = {g: _sample_hair(g, rng) for g in ("man", "woman")}
    base_acc = (("knee pads", _pick(rng, P.BAND_COLOURS)),) if scene == "volleyball" else ()
    base_common = {
        "shoes": _pick(rng, P.SHOE_COLOURS),
        "socks": (style["socks"], _pick(rng, P.SOCK_COLOURS)),
        "build": ("average", "average"),
        "accessories": base_acc,
        "skin": base_skin,
    }
    cues = ["hair", "shoes", "socks", "build", "accessories"] + (["skin"] if kind == "sports" else [])
    weights = np.array([0.26, 0.2, 0.2, 0.16, 0.12, 0.06][: len(cues)])
    numbers = (
        [str(n) for n in rng.choice(np.arange(1, 100), size=size, replace=False)] if kind == "sports" else [""] * size
    )
    members: list[Identity] = []
    signatures: set[tuple] = set()
    for i in range(size):
        gender = _pick(rng, ["man", "woman"]) if mixed else team_gender
        base = dict(base_common, hair=base_hair[gender], gender=gender)
        attrs = base
        for attempt in range(100):
            attrs = dict(base)
            n_changes = 0 if (i == 0 and attempt == 0) else int(rng.choice([1, 2, 3], p=[0.5, 0.4, 0.1]))
            for cue in rng.choice(cues, size=n_changes, replace=False, p=weights / weights.sum()):
                attrs.update(_resample(str(cue), base, scene, gender, rng))
            signature = tuple(sorted((k, str(v)) for k, v in attrs.items()))
            if signature not in signatures:
                break
        else:
            logger.warning("group %s: could not make member %d distinct from its teammates", group, i)
        signatures.add(signature)
        look, text = _member_look(kind, scene, uniform, attrs, numbers[i])
        members.append(
            Identity(identity_id=f"{kind}-{first_index + i:04d}", split=split, group=group, look=look, **text)
        )
    return members


def sample_identities(
    kind: str,
    n: int,
    seed: int | np.random.Generator,
    *,
    split: str = "pretrain",
    group_size: int = 8,
    first_index: int = 1,
) -> list[Identity]:
    """Sample ``n`` identities in groups of about ``group_size`` (teams or dance groups), scenes in rotation.

    Useful outside a world, e.g. to render image-caption pairs of identities disjoint from any ReID split (pass a
    different ``seed`` and ``split``, and a ``first_index`` beyond the world's identities).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([int(seed), 7])
    scenes = P.SPORTS if kind == "sports" else P.DANCE_GENRES
    out: list[Identity] = []
    taken: set = set()
    g = 0
    while len(out) < n:
        size = min(group_size, n - len(out))
        out += sample_group(
            kind,
            scenes[g % len(scenes)],
            size,
            rng,
            split=split,
            group=f"{split}-group-{g:02d}",
            first_index=first_index + len(out),
            taken_uniforms=taken,
        )
        g += 1
    return out
