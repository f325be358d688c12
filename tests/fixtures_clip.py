"""Tiny randomly initialised models for caption tests, built offline in a temporary folder.

* :func:`tiny_clip` — a Hugging Face CLIP directory (via :func:`cgclip.clip.random_clip.save_random_clip`).
* :func:`tiny_ved_captioner` — a VisionEncoderDecoderModel (tiny ViT + tiny GPT-2) with a word-level tokenizer and a
  ViT image processor: an image-only captioner.
* :func:`tiny_blip` — a tiny BLIP (``AutoModelForImageTextToText``) with a BERT word-piece tokenizer + processor.
* :func:`tiny_text_lm` — a tiny GPT-2 causal LM with a chat template, for text-only tasks (augmentation).
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = (
    "a person man woman wearing red blue green shirt shorts with black hair white shoes the is and "
    "number jersey socks tall slim player in"
).split()


def tiny_clip(out_dir: Path, seed: int = 0) -> Path:
    """A tiny random CLIP directory (config.json, model.safetensors, CLIP tokenizer files)."""
    from cgclip.clip.random_clip import save_random_clip

    return save_random_clip(out_dir, size="tiny-vit", seed=seed)


def _word_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def tiny_ved_captioner(out_dir: Path, seed: int = 0) -> Path:
    """A tiny ViT + GPT-2 VisionEncoderDecoderModel captioner that always emits words (specials suppressed)."""
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tok = _word_tokenizer()
    enc = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    dec = GPT2Config(
        vocab_size=len(tok),
        n_positions=64,
        n_embd=32,
        n_layer=1,
        n_head=2,
        add_cross_attention=True,
        is_decoder=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    ids = (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id)
    cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = ids
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VisionEncoderDecoderModel(config=cfg)
    gen = model.generation_config
    gen.decoder_start_token_id, gen.pad_token_id, gen.eos_token_id = ids
    gen.suppress_tokens = [tok.pad_token_id, tok.bos_token_id, tok.unk_token_id, tok.eos_token_id]
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out_dir)
    return out_dir


def tiny_blip(out_dir: Path, seed: int = 0) -> Path:
    """A tiny BLIP image captioner with a processor (BLIP image processor + BERT tokenizer)."""
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(str(out_dir / "vocab.txt"))
    cfg = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            encoder_hidden_size=32,
            max_position_embeddings=64,
            bos_token_id=2,
            sep_token_id=3,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BlipForConditionalGeneration(cfg)
    model.generation_config.suppress_tokens = [0, 1, 3, 4]
    model.save_pretrained(out_dir)
    BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok).save_pretrained(out_dir)
    return out_dir


def tiny_text_lm(out_dir: Path, seed: int = 0) -> Path:
    """A tiny GPT-2 causal LM with a chat template (text-only back-end for augmentation)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _word_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=256,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.suppress_tokens = [tok.pad_token_id, tok.bos_token_id, tok.unk_token_id, tok.eos_token_id]
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
