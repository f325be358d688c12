"""ID text always survives the text tower's context: long caption bodies are shortened by tokens (issue 12.1)."""

from __future__ import annotations

import pytest

from cgclip.captions.idtext import apply_id_text_fitted, fit_id_text, id_text, over_context, token_count


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import CLIPTokenizer

    from cgclip.clip.embedded import embedded_clip_dir

    return CLIPTokenizer.from_pretrained(str(embedded_clip_dir()), local_files_only=True)


LONG = " ".join(
    [
        "The player wears a red and maroon striped jersey with navy shorts, long pink socks and yellow "
        "football boots, and has long red hair tied back."
    ]
    * 10
)  # about 200 words


def test_long_caption_keeps_its_id_sentence(tokenizer):
    sentence = id_text("0007")
    text, cut = fit_id_text(LONG, sentence, tokenizer, 77)
    assert cut and text.endswith(sentence)
    assert token_count(tokenizer, text) <= 77
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    tail = tokenizer(" " + sentence, add_special_tokens=False)["input_ids"]
    assert ids[-1 - len(tail) : -1] == tail  # the sentence's tokens are the last before the end token
    # without fitting, truncation at 77 tokens removes the sentence, so two identities would read the same text
    plain = [tokenizer(f"{LONG} {id_text(i)}", truncation=True, max_length=77)["input_ids"] for i in ("0007", "0008")]
    assert plain[0] == plain[1]
    fitted = [tokenizer(fit_id_text(LONG, id_text(i), tokenizer, 77)[0])["input_ids"] for i in ("0007", "0008")]
    assert fitted[0] != fitted[1]


def test_short_captions_are_unchanged_and_counted(tokenizer):
    caps = ["A man in a red jersey.", LONG]
    texts, shortened = apply_id_text_fitted(caps, "0042", tokenizer, 77)
    assert texts[0] == "A man in a red jersey. The person's ID is 0042."
    assert shortened == 1 and all(t.endswith("The person's ID is 0042.") for t in texts)
    assert over_context(texts, tokenizer, 77) == 0 and over_context(caps, tokenizer, 77) == 1


@pytest.mark.parametrize("max_length", [16, 24, 40])
def test_any_context_length(tokenizer, max_length):
    text, cut = fit_id_text(LONG, id_text("12"), tokenizer, max_length)
    assert cut and text.endswith(id_text("12")) and token_count(tokenizer, text) <= max_length


def test_caption_texts_fit_with_the_text_encoders_tokenizer(tokenizer):
    from cgclip.models.build import caption_texts

    texts, owners = caption_texts([[LONG], [LONG]], 2, "caption_idtext", ["0007", "0008"], tokenizer, 77)
    assert owners == [0, 1] and texts[0] != texts[1]
    assert all(token_count(tokenizer, t) <= 77 for t in texts)


def test_caption_report_counts_captions_over_the_context(tmp_path, tokenizer):
    import torch

    from cgclip.captions.report import caption_report
    from cgclip.captions.store import CaptionRecord, CaptionStore

    class Encoder:  # the parts of ClipFeatures the report uses
        max_length = 77

        def __init__(self, tok):
            self.tokenizer = tok

        def encode_texts(self, texts):
            return torch.nn.functional.normalize(torch.randn(len(texts), 8), dim=-1)

    store = CaptionStore(tmp_path / "caps.jsonl")
    near = "red"
    while token_count(tokenizer, near + " red") <= 76:  # fits alone, not with the ID sentence
        near += " red"
    store.add(
        [
            CaptionRecord("A", "A man in red.", "mllm"),
            CaptionRecord("B", LONG, "mllm"),
            CaptionRecord("C", near, "mllm"),
        ]
    )
    clip = caption_report(store, text_encoder=Encoder(tokenizer))["clip"]
    assert clip["context_tokens"] == 77
    assert clip["captions_over_context"] == 1 and clip["captions_over_context_with_id_text"] == 2
