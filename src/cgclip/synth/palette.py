"""Named colours and the attribute vocabularies of the synthetic world.

Every attribute value written to the identity table is built from the English names here, and the renderer draws
exactly the RGB value bound to that name, so a caption generated from the table describes what is on screen.
"""

from __future__ import annotations

RGB = tuple[int, int, int]

#: Clothing / equipment colours (name used in captions -> RGB drawn).
CLOTH: dict[str, RGB] = {
    "red": (204, 32, 38),
    "blue": (36, 84, 200),
    "navy": (22, 32, 86),
    "sky blue": (112, 176, 234),
    "white": (242, 242, 238),
    "black": (26, 26, 30),
    "yellow": (246, 214, 36),
    "green": (28, 146, 64),
    "orange": (246, 124, 24),
    "purple": (114, 42, 156),
    "maroon": (112, 22, 44),
    "grey": (142, 142, 146),
    "pink": (244, 132, 184),
    "teal": (18, 146, 146),
    "gold": (218, 176, 52),
}

#: Jersey colour pairs (shirt, shorts) are drawn from these; chosen to stay readable on every background.
JERSEY_COLOURS = [
    "red",
    "blue",
    "navy",
    "sky blue",
    "white",
    "black",
    "yellow",
    "green",
    "orange",
    "purple",
    "maroon",
    "teal",
]
SHOE_COLOURS = ["white", "black", "red", "blue", "yellow", "orange", "green", "pink", "grey", "gold"]
SOCK_COLOURS = ["white", "black", "red", "blue", "yellow", "navy", "grey", "green", "orange", "pink"]
BAND_COLOURS = ["white", "black", "red", "blue", "yellow", "pink", "green", "orange"]

HAIR_COLOURS: dict[str, RGB] = {
    "black": (22, 20, 20),
    "dark brown": (64, 40, 24),
    "brown": (120, 76, 40),
    "blond": (228, 192, 112),
    "red": (176, 64, 26),
    "grey": (166, 164, 160),
}

#: Hair styles: name -> caption template ({c} = hair colour name). "shaved" has no colour.
HAIR_STYLES: dict[str, str] = {
    "short": "short {c} hair",
    "buzz": "buzz-cut {c} hair",
    "curly": "curly {c} hair",
    "long": "long {c} hair",
    "ponytail": "{c} ponytail",
    "bun": "{c} hair in a bun",
    "shaved": "shaved head",
}
HAIR_BY_GENDER = {
    "man": (["short", "buzz", "curly", "shaved", "long"], [0.38, 0.22, 0.2, 0.12, 0.08]),
    "woman": (["long", "ponytail", "bun", "short", "curly"], [0.3, 0.3, 0.18, 0.12, 0.1]),
}

SKIN_TONES: dict[str, RGB] = {
    "fair skin": (246, 214, 190),
    "light skin": (228, 184, 148),
    "olive skin": (198, 150, 106),
    "brown skin": (146, 98, 62),
    "dark skin": (92, 62, 42),
}

#: (height word, height factor) x (width word, width factor) -> build caption.
HEIGHTS = {"short": 0.92, "average": 1.0, "tall": 1.08}
WIDTHS = {"slim": 0.86, "average": 1.0, "broad": 1.17}
BUILD_TEXT = {
    ("tall", "slim"): "tall and slim",
    ("tall", "average"): "tall",
    ("tall", "broad"): "tall and broad",
    ("average", "slim"): "slim",
    ("average", "average"): "average build",
    ("average", "broad"): "broad-shouldered",
    ("short", "slim"): "short and slim",
    ("short", "average"): "short",
    ("short", "broad"): "short and stocky",
}

SPORTS = ["soccer", "basketball", "volleyball"]
DANCE_GENRES = ["hip-hop", "ballet", "jazz"]

#: Per scene: sleeve style, shorts length (fraction of thigh covered), shoe word, default sock length,
#: accessory kinds players may wear.
SCENE_STYLE: dict[str, dict] = {
    "soccer": {
        "sleeves": "short",
        "shoe": "football boots",
        "socks": "long",
        "accessories": ["headband", "wristbands", "armband", "arm sleeve"],
    },
    "basketball": {
        "sleeves": "none",
        "shoe": "sneakers",
        "socks": "short",
        "accessories": ["headband", "wristbands", "arm sleeve", "glasses"],
    },
    "volleyball": {
        "sleeves": "short",
        "shoe": "sneakers",
        "socks": "short",
        "accessories": ["knee pads", "headband", "wristbands", "arm sleeve"],
    },
    "hip-hop": {
        "shoe": "sneakers",
        "socks": "long",
        "accessories": ["cap", "wristbands", "glasses", "necklace", "headband"],
    },
    "ballet": {
        "shoe": "ballet shoes",
        "socks": "short",
        "accessories": ["headband", "necklace", "wristbands", "glasses"],
    },
    "jazz": {
        "shoe": "jazz shoes",
        "socks": "short",
        "accessories": ["headband", "necklace", "wristbands", "glasses", "cap"],
    },
}

#: Dance costumes per genre: (top style, sleeves, bottom style) and the caption template.
#: {t} top colour, {b} bottom colour.
DANCE_COSTUMES: dict[str, list[tuple[str, str, str, str]]] = {
    "hip-hop": [
        ("tee", "short", "long shorts", "oversized {t} t-shirt with {b} knee-length shorts"),
        ("hoodie", "long", "shorts", "{t} hoodie with {b} shorts"),
        ("tank", "none", "cropped", "{t} tank top with {b} cropped trousers"),
    ],
    "ballet": [
        ("leotard", "none", "tutu", "{t} leotard with a {b} tutu"),
        ("leotard", "long", "skirt", "long-sleeved {t} leotard with a {b} skirt"),
    ],
    "jazz": [
        ("top", "short", "skirt", "{t} sequined top with a {b} skirt"),
        ("top", "none", "shorts", "{t} sleeveless top with {b} shorts"),
        ("top", "long", "cropped", "long-sleeved {t} top with {b} cropped trousers"),
    ],
}


def with_article(word: str) -> str:
    """``word`` with its indefinite article ("a red", "an orange")."""
    return ("an " if word[0] in "aeiou" else "a ") + word


def accessory_text(kind: str, colour: str) -> str:
    """The caption phrase of one accessory (``colour`` is ignored by colourless ones)."""
    return {
        "headband": f"{with_article(colour)} headband",
        "wristbands": f"{colour} wristbands",
        "armband": f"{with_article(colour)} captain's armband",
        "arm sleeve": f"{with_article(colour)} sleeve on the left arm",
        "glasses": "glasses",
        "knee pads": f"{colour} knee pads",
        "cap": f"{with_article(colour)} cap",
        "necklace": "a gold necklace",
    }[kind]


def join_phrases(phrases: list[str]) -> str:
    """Join caption phrases with "and" ("a", "a and b"); an empty list gives ""."""
    return " and ".join(phrases)
