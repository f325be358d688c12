"""Build a small CLIP-style byte-level BPE tokenizer offline and save it in Hugging Face format.

The saved directory (``vocab.json``, ``merges.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``) loads with
``transformers.CLIPTokenizer`` / ``CLIPTokenizerFast`` / ``AutoTokenizer`` exactly like OpenAI's CLIP tokenizer:
NFC + whitespace squashing + lower-casing, CLIP's word splitting regex, byte-level symbols with an ``</w>`` end-of-word
suffix, ``<|startoftext|>`` / ``<|endoftext|>`` around every text (``<|endoftext|>`` also pads).

The vocabulary follows OpenAI's layout: the 256 byte symbols, the same 256 with ``</w>``, one token per learned
merge, and the two special tokens last (so the end-of-text token has the highest id, as in OpenAI CLIP). Every text
is therefore representable without an unknown token.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

from cgclip.io_utils import atomic_write_text, write_json

logger = logging.getLogger(__name__)

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
EOW_SUFFIX = "</w>"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
_SPLIT_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

# Words of the synthetic caption world (appearance attributes of players and dancers); the default corpus is built
# from them so that a tokenizer made without a caption corpus still has whole-word tokens for them.
_COLOURS = (
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "grey",
    "gray",
    "orange",
    "purple",
    "pink",
    "brown",
    "navy",
    "teal",
    "maroon",
    "cyan",
    "gold",
    "silver",
    "beige",
    "dark",
    "light",
    "bright",
)
_THINGS = (
    "shirt",
    "jersey",
    "uniform",
    "costume",
    "dress",
    "shorts",
    "pants",
    "skirt",
    "shoes",
    "sneakers",
    "boots",
    "socks",
    "hair",
    "cap",
    "hat",
    "headband",
    "wristband",
    "glasses",
    "number",
    "sleeves",
    "top",
    "trousers",
    "outfit",
    "kit",
    "bag",
    "ponytail",
    "bun",
    "braid",
    "beard",
    "tattoo",
    "gloves",
)
_DESCRIPTORS = (
    "short",
    "long",
    "curly",
    "straight",
    "bald",
    "tall",
    "slim",
    "stocky",
    "muscular",
    "thin",
    "medium",
    "small",
    "large",
    "sleeved",
    "striped",
    "plain",
    "high",
    "low",
    "man",
    "woman",
    "person",
    "player",
    "dancer",
    "athlete",
    "male",
    "female",
    "basketball",
    "football",
    "volleyball",
    "soccer",
    "ballet",
    "hip",
    "hop",
    "jazz",
    "street",
    "dance",
    "sports",
    "team",
    "group",
)
_FRAMES = (
    "a {d} {x} wearing a {c} {t}.",
    "the {x} has {c} {t} and {d} hair.",
    "a photo of a {c} {t}.",
    "this {x} wears {c} {t} with the number {n}.",
    "the person's id is {n}.",
    "{c} {t}, {d} {x}, number {n}",
)


def default_corpus() -> list[str]:
    """A deterministic list of a few thousand short captions covering the synthetic world's attribute words."""
    texts: list[str] = []
    people = ("person", "man", "woman", "player", "dancer")
    for i, (c, t) in enumerate(itertools.product(_COLOURS, _THINGS)):
        frame = _FRAMES[i % len(_FRAMES)]
        texts.append(
            frame.format(c=c, t=t, d=_DESCRIPTORS[i % len(_DESCRIPTORS)], x=people[i % len(people)], n=i % 100)
        )
    texts.extend(" ".join(_DESCRIPTORS[i : i + 6]) for i in range(0, len(_DESCRIPTORS), 3))
    texts.extend(f"number {n}" for n in range(100))
    return texts


def byte_symbols() -> list[str]:
    """The 256 printable symbols standing for the bytes 0..255 in byte-level BPE, in byte order.

    Printable Latin-1 bytes map to themselves; the others map to consecutive code points from U+0100.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), 256))
    symbols, extra = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def _bpe_model_for_training() -> Tokenizer:
    tok = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix=EOW_SUFFIX))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    return tok


def learn_merges(corpus: Iterable[str], num_merges: int = 1000, min_frequency: int = 2) -> list[tuple[str, str]]:
    """Learn up to ``num_merges`` BPE merges (in priority order) from ``corpus`` with CLIP's pre-tokenisation."""
    tok = _bpe_model_for_training()
    trainer = trainers.BpeTrainer(
        vocab_size=2 * 256 + num_merges,
        min_frequency=min_frequency,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix=EOW_SUFFIX,
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    raw = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in raw]
    return [(a, b) for a, b in merges][:num_merges]


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """OpenAI-layout vocabulary: byte symbols, byte symbols + ``</w>``, merge results, then BOS and EOS."""
    tokens = byte_symbols()
    tokens = tokens + [s + EOW_SUFFIX for s in tokens]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    tokens += [BOS_TOKEN, EOS_TOKEN]
    return {tok: i for i, tok in enumerate(tokens)}


def save_clip_tokenizer(
    out_dir: str | Path, merges: list[tuple[str, str]], model_max_length: int = 77
) -> dict[str, int]:
    """Write a CLIP tokenizer directory for ``merges``; return its vocabulary (token → id)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(merges)
    write_json(out_dir / "vocab.json", vocab)
    atomic_write_text(out_dir / "merges.txt", "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    specials = {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "unk_token": EOS_TOKEN, "pad_token": EOS_TOKEN}
    write_json(out_dir / "special_tokens_map.json", specials)
    write_json(
        out_dir / "tokenizer_config.json",
        {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": model_max_length,
            "do_lower_case": True,
            "errors": "replace",
            "add_prefix_space": False,
            "clean_up_tokenization_spaces": False,
            **specials,
        },
    )
    logger.info("wrote CLIP tokenizer with %d tokens (%d merges) to %s", len(vocab), len(merges), out_dir)
    return vocab


def build_clip_tokenizer(
    out_dir: str | Path, corpus: Iterable[str] | None = None, num_merges: int = 1000, model_max_length: int = 77
) -> dict[str, int]:
    """Learn merges from ``corpus`` (default: :func:`default_corpus`) and save a CLIP tokenizer to ``out_dir``.

    Returns the vocabulary. ``len(vocab)`` is at most ``512 + num_merges + 2``.
    """
    merges = learn_merges(default_corpus() if corpus is None else corpus, num_merges=num_merges)
    return save_clip_tokenizer(out_dir, merges, model_max_length=model_max_length)


def special_token_ids(vocab: dict[str, int]) -> dict[str, int]:
    """Ids to put in a ``CLIPTextConfig``: ``bos_token_id``, ``eos_token_id`` and ``pad_token_id`` (= EOS)."""
    return {"bos_token_id": vocab[BOS_TOKEN], "eos_token_id": vocab[EOS_TOKEN], "pad_token_id": vocab[EOS_TOKEN]}
