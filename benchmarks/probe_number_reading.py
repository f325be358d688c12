"""Can the embedded tiny CLIP's image tower learn to read jersey numbers at all? A supervised probe.

The contrastive pretraining never taught the tiny CLIP numbers (``docs/RESULTS.md``). This probe removes the text
tower and the contrastive objective: it trains the tiny CLIP's vision architecture (``clip_config("tiny")``, a
Hugging Face ``CLIPVisionModel``, from scratch) with a linear head that classifies the two digits directly, on
back-view crops wearing numbers drawn at random (:func:`cgclip.pretrain.data.render_number_pool`), and
compares it with a small 4-layer CNN trained the same way. Held-out accuracy of the whole number (chance about 1 %)
and of the ones digit (chance 10 %) is printed every ``--every`` steps.

``--task plain`` replaces the crops by bare numbers ``--digit-height`` pixels tall at random places on plain
backgrounds, a far easier control.

``--readout text`` asks the pretraining's question instead: can CLIP's *two-tower* geometry bind what the image
tower reads to the words? The digit head is replaced by a linear projection (the CLIP visual projection, 256-d) and
a tiny CLIP text tower from scratch (the shipped tokenizer); each step classifies the crops among the text
embeddings of all numbers 1–99, one random training wording each (:func:`cgclip.pretrain.data.number_phrases`,
the pretraining's text-classifier loss), and the held-out score is zero-shot: the nearest of the 99 numbers' zero-shot
prompts (:data:`cgclip.pretrain.data.PROMPTS`, wordings never trained on), as in ``pretrain_report.json``.
``--readout shared`` adds one linear digit head shared by both towers, on the image embeddings and on the number
texts' embeddings (the pretraining's ``--joint-digit-weight``,
:class:`cgclip.pretrain.targets.JointDigitHead`), and is scored zero-shot in the same way.

    python benchmarks/probe_number_reading.py --models vit-p16 cnn --steps 1000
    python benchmarks/probe_number_reading.py --task plain --digit-height 40 --models vit-p16 --steps 750
    python benchmarks/probe_number_reading.py --readout text --models vit-cnn16-global --steps 600
    python benchmarks/probe_number_reading.py --readout shared --models vit-cnn16-global --steps 600
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cgclip.clip.preprocess import to_pixels
from cgclip.clip.random_clip import clip_config
from cgclip.clip.tokenizer import build_vocab
from cgclip.pretrain.data import IMAGE_SIZE, pretrain_identities, render_number_pool
from cgclip.pretrain.targets import digit_targets
from cgclip.runtime import autocast
from cgclip.synth.person import digits_mask

MODELS = ("vit-p16", "vit-p8", "vit-cnn", "vit-cnn-global", "vit-cnn16-global", "stem", "stem-proj", "cnn")


def plain_numbers(n: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """``n`` 128×64 crops, each a random number 1–99 ``height`` px tall at a random place, random colours."""
    h, w = IMAGE_SIZE
    crops = np.empty((n, h, w, 3), dtype=np.uint8)
    numbers = [str(v) for v in rng.integers(1, 100, size=n)]
    for i, number in enumerate(numbers):
        canvas = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
        mask = digits_mask(number)
        width = min(w - 4, max(1, round(mask.width * height / mask.height)))
        mask = mask.resize((width, height), Image.BILINEAR)
        ink = Image.new("RGB", mask.size, tuple(int(v) for v in rng.integers(0, 256, 3)))
        canvas.paste(ink, (int(rng.integers(0, w - width + 1)), int(rng.integers(0, h - height + 1))), mask)
        crops[i] = np.asarray(canvas)
    return crops, numbers


class SmallCNN(torch.nn.Module):
    """Four 3×3 conv–BN–ReLU stages (32–192 channels), three 2× max-pools, global max-pool: a 192-d feature."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        for i, (cin, cout) in enumerate(((3, 32), (32, 64), (64, 128), (128, 192))):
            layers += [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]
            if i < 3:
                layers.append(torch.nn.MaxPool2d(2))
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` → ``[B, 192]``."""
        return self.body(x).amax(dim=(2, 3))


class StemPool(torch.nn.Module):
    """The embedded CLIP's conv stem alone (:data:`cgclip.clip.random_clip.TINY_STEM`), global max-pool of its last
    ReLU features (``--stem-readout body``, as the pretraining's stem heads) or of its 1×1 projection (``proj``,
    what the transformer reads): 192-d."""

    def __init__(self, readout: str = "body") -> None:
        super().__init__()
        from cgclip.clip.conv_stem import ConvStem
        from cgclip.clip.random_clip import TINY_STEM

        self.stem = ConvStem(TINY_STEM, 192)
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` → ``[B, 192]``."""
        grid = self.stem.body(x) if self.readout == "body" else self.stem(x)
        return grid.amax(dim=(2, 3))


class TinyViT(torch.nn.Module):
    """The tiny CLIP's vision transformer (random init) at ``patch`` px, or behind a conv stem (``patch=None``;
    ``stem`` channels, default :data:`cgclip.clip.random_clip.TINY_STEM`; ``global_pool`` adds the stem's
    projected global max-pool to every token); its pooled (post-LN CLS) feature."""

    def __init__(self, patch: int | None, stem: tuple[int, ...] | None = None, global_pool: bool = False) -> None:
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModel

        from cgclip.clip.conv_stem import STEM_KEY, apply_stem, conv_stem_config
        from cgclip.clip.random_clip import TINY_STEM

        vision = clip_config("tiny", build_vocab([])).vision_config.to_dict()
        if patch is not None:
            vision.pop(STEM_KEY, None)
            vision["patch_size"] = patch
        else:
            vision.update(conv_stem_config(stem or TINY_STEM, global_pool=global_pool))
        self.model = CLIPVisionModel(CLIPVisionConfig(**vision))
        apply_stem(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` → ``[B, 192]``."""
        return self.model(pixel_values=x, interpolate_pos_encoding=True).pooler_output


#: A stride-16 stem (8×4 tokens at 128×64, as many as the 16-px ViT) for ``vit-cnn16-global``.
STEM16 = (16, 32, 64, 128, 192)


def build(name: str) -> torch.nn.Module:
    """A feature extractor of :data:`MODELS` by name."""
    if name == "cnn":
        return SmallCNN()
    if name.startswith("stem"):
        return StemPool("proj" if name == "stem-proj" else "body")
    if name.startswith("vit-cnn"):
        return TinyViT(None, STEM16 if "cnn16" in name else None, global_pool=name.endswith("-global"))
    return TinyViT(int(name.split("-p")[1]))


#: The candidate numbers of ``--readout text``.
NUMBERS = tuple(str(n) for n in range(1, 100))


class DigitReadout(torch.nn.Module):
    """``--readout digits``: a linear 21-way head (tens digit or none, ones digit) on the 192-d feature."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(192, 21)

    def loss(self, feature: torch.Tensor, numbers: list[str], rng: np.random.Generator) -> torch.Tensor:
        """Cross-entropy of both digits."""
        tens, ones = digit_targets(numbers)
        logits = self.head(feature).float()
        return F.cross_entropy(logits[:, :11], tens) + F.cross_entropy(logits[:, 11:], ones)

    @torch.no_grad()
    def predict(self, feature: torch.Tensor) -> list[str]:
        """The number each feature reads."""
        logits = self.head(feature).float()
        tens, ones = logits[:, :11].argmax(1).tolist(), logits[:, 11:].argmax(1).tolist()
        return [str(o) if t == 10 else f"{t}{o}" for t, o in zip(tens, ones)]


class TextReadout(torch.nn.Module):
    """``--readout text``: the CLIP visual projection (192 → 256) and a tiny CLIP text tower (random init, the shipped
    tokenizer), with CLIP's learnable logit scale (starting at 1/0.07, clamped at 100)."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        from cgclip.clip.backbone import ClipTextEncoder
        from cgclip.clip.embedded import embedded_clip_dir
        from cgclip.clip.random_clip import tokenizer_vocab
        from cgclip.pretrain.data import PROMPTS, number_phrases

        clip_dir = embedded_clip_dir()
        config = clip_config("tiny", tokenizer_vocab(clip_dir)).text_config
        tower = CLIPTextModelWithProjection(config)
        tokenizer = CLIPTokenizer.from_pretrained(str(clip_dir), local_files_only=True)
        self.text = ClipTextEncoder(tower.text_model, tower.text_projection, tokenizer, frozen=False)
        self.visual_projection = torch.nn.Linear(192, config.projection_dim, bias=False)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.wordings = [number_phrases(n) for n in NUMBERS]
        self.prompts = [PROMPTS["number"].format(n) for n in NUMBERS]
        self.index = {n: k for k, n in enumerate(NUMBERS)}

    def _embed(self, feature: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        image = F.normalize(self.visual_projection(feature).float(), dim=-1)
        return image, F.normalize(self.text(texts).float(), dim=-1)

    def _text_loss(
        self, feature: torch.Tensor, numbers: list[str], rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The text-classifier loss and the image and number-text embeddings it was computed on."""
        from cgclip.pretrain.targets import attribute_text_loss

        image, text = self._embed(feature, [w[int(rng.integers(len(w)))] for w in self.wordings])
        labels = torch.tensor([self.index[n] for n in numbers])
        return attribute_text_loss(image, text, labels, self.logit_scale.clamp(max=math.log(100.0))), image, text

    def loss(self, feature: torch.Tensor, numbers: list[str], rng: np.random.Generator) -> torch.Tensor:
        """The pretraining's text-classifier loss over the 99 numbers, one random training wording each."""
        return self._text_loss(feature, numbers, rng)[0]

    @torch.no_grad()
    def predict(self, feature: torch.Tensor) -> list[str]:
        """The number whose zero-shot prompt is nearest to each feature."""
        image, prompts = self._embed(feature, self.prompts)
        return [NUMBERS[k] for k in (image @ prompts.T).argmax(1).tolist()]


class SharedReadout(TextReadout):
    """``--readout shared``: the text readout plus the pretraining's joint digit head (tens or none, ones), shared by
    both towers: applied to the L2-normalised image embeddings of the crops and to the text embeddings of the
    numbers' wordings.

    The shared head anchors both towers to the same directions of the joint space (the text tower must encode the
    digits its wording names, the image tower the digits it sees), which the text-classifier loss alone, with both
    towers random, does not start to do.
    """

    def __init__(self) -> None:
        super().__init__()
        from cgclip.pretrain.targets import JointDigitHead

        self.digits = JointDigitHead(self.visual_projection.out_features)

    def _digit_loss(self, emb: torch.Tensor, numbers: list[str]) -> torch.Tensor:
        return 2 * self.digits.loss(emb, *digit_targets(numbers))

    def loss(self, feature: torch.Tensor, numbers: list[str], rng: np.random.Generator) -> torch.Tensor:
        """Text-classifier loss + the shared digit head's loss on the image and on the text embeddings."""
        text_loss, image, text = self._text_loss(feature, numbers, rng)
        return text_loss + self._digit_loss(image, numbers) + self._digit_loss(text, list(NUMBERS))


READOUTS = {"digits": DigitReadout, "text": TextReadout, "shared": SharedReadout}


def accuracy(
    net: torch.nn.Module, readout: torch.nn.Module, pixels: torch.Tensor, numbers: list[str]
) -> tuple[float, float]:
    """Held-out (whole number, ones digit) accuracy in percent."""
    net.eval()
    readout.eval()
    with torch.no_grad(), autocast("cpu"):
        read = readout.predict(net(pixels).float())
    net.train()
    readout.train()
    whole = np.mean([r == n for r, n in zip(read, numbers)])
    ones = np.mean([r[-1] == n[-1] for r, n in zip(read, numbers)])
    return 100 * float(whole), 100 * float(ones)


def probe(
    name: str,
    train: tuple[np.ndarray, list[str]],
    test: tuple[np.ndarray, list[str]],
    steps: int,
    lr: float,
    every: int,
    seed: int,
    readout_name: str = "digits",
) -> list[dict]:
    """Train ``name`` + a readout of :data:`READOUTS` (AdamW, warm-up 50, cosine, batch 64, the CPU's auto
    precision); the curve."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net, readout = build(name), READOUTS[readout_name]()
    params = list(net.parameters()) + list(readout.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05, betas=(0.9, 0.98))
    test_px = to_pixels(test[0])
    curve, start = [], time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        idx = rng.choice(len(train[0]), 64, replace=False)
        with autocast("cpu"):
            loss = readout.loss(net(to_pixels(train[0][idx])).float(), [train[1][i] for i in idx], rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % every == 0 or step + 1 == steps:
            number, one = accuracy(net, readout, test_px, test[1])
            last = float(loss.detach())
            curve.append(
                {
                    "step": step + 1,
                    "seconds": round(time.perf_counter() - start, 1),
                    "loss": round(last, 3),
                    "number": round(number, 1),
                    "ones": round(one, 1),
                }
            )
            print(
                f"  {name} ({readout_name}) step {step + 1}: loss {last:.3f}, number {number:.1f}%, "
                f"ones digit {one:.1f}%",
                flush=True,
            )
    return curve


def main() -> None:
    """Render the data, train each model, print the table and write ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=["vit-p16", "cnn"])
    ap.add_argument("--task", choices=("crops", "plain"), default="crops")
    ap.add_argument(
        "--readout",
        choices=tuple(READOUTS),
        default="digits",
        help="a supervised digit head, or CLIP's text tower over the numbers' wordings (zero-shot score)",
    )
    ap.add_argument("--digit-height", type=int, default=40, help="number height in px for --task plain")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--lr-vit", type=float, default=5e-4)
    ap.add_argument("--lr-cnn", type=float, default=2e-3)
    ap.add_argument("--train-crops", type=int, default=16384)
    ap.add_argument("--test-crops", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--out", type=Path, default=Path(".bench_out/number_probe.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.task == "crops":  # training identities vs held-out identities, as in pretraining
        train = render_number_pool(pretrain_identities(640, args.seed, "train"), args.train_crops, args.seed)[:2]
        test = render_number_pool(pretrain_identities(96, args.seed, "heldout"), args.test_crops, args.seed + 1)[:2]
    else:
        rng = np.random.default_rng(args.seed)
        train = plain_numbers(args.train_crops, args.digit_height, rng)
        test = plain_numbers(args.test_crops, args.digit_height, rng)
    print(
        f"rendered {len(train[0])} training + {len(test[0])} held-out images ({args.task}) in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    results = {}
    for name in args.models:
        lr = args.lr_cnn if name == "cnn" or name.startswith("stem") else args.lr_vit
        results[name] = {
            "lr": lr,
            "curve": probe(name, train, test, args.steps, lr, args.every, args.seed, args.readout),
        }
    print(
        f"\nheld-out accuracy after {args.steps} steps of batch 64 ({args.task}, {args.readout} readout"
        f"{f', {args.digit_height} px' if args.task == 'plain' else ''}; chance: number ~1%, ones digit 10%)\n"
    )
    print("| model | lr | steps/s | number % | ones digit % |")
    print("|---|---|---|---|---|")
    for name, res in results.items():
        last = res["curve"][-1]
        print(
            f"| {name} | {res['lr']:g} | {last['step'] / last['seconds']:.1f} | {last['number']:.1f} | "
            f"{last['ones']:.1f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
