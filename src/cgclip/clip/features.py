"""CLIP text and image features straight from a local Hugging Face CLIP directory (for the report and the
attribute captioner). Features are the projected, L2-normalised CLIP embeddings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cgclip.clip.conv_stem import stem_spec
from cgclip.clip.preprocess import to_pixels
from cgclip.data.transforms import CLIP_MEAN, CLIP_STD

logger = logging.getLogger(__name__)


class ClipFeatures:
    """A CLIP model + tokenizer from ``clip_dir`` (``local_files_only``), on ``device`` (a :mod:`cgclip.runtime`
    spelling: ``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""

    def __init__(self, clip_dir: str | Path, device: str | torch.device = "cpu") -> None:
        from cgclip.clip.files import load_clip_model
        from cgclip.runtime import resolve_device

        self.clip_dir = Path(clip_dir)
        self.device = resolve_device(device)
        model, self.tokenizer = load_clip_model(self.clip_dir)
        self.model = model.to(self.device).eval()
        self.image_size = int(self.model.config.vision_config.image_size)
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.crop_encoder = None
        if stem_spec(self.model.config.vision_config) is not None:
            # a cgclip tiny CLIP: trained on 2:1 person crops at image_size x image_size/2, so it sees them so too
            from cgclip.clip.backbone import ClipImageEncoder

            self.crop_size = (self.image_size, self.image_size // 2)
            self.crop_encoder = ClipImageEncoder(
                self.model.vision_model, self.model.visual_projection, image_size=self.crop_size, live_positions=True
            ).eval()

    @staticmethod
    def _features(out: Any) -> torch.Tensor:
        feats = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """``[len(texts), d]`` normalised text features (texts truncated to the model's context)."""
        chunks = []
        for i in range(0, len(texts), batch_size):
            tok = self.tokenizer(
                list(texts[i : i + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            chunks.append(self._features(self.model.get_text_features(**tok)).cpu())
        if not chunks:
            return torch.zeros(0, int(self.model.config.projection_dim))
        return torch.cat(chunks)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """Letterbox a (tall) person crop onto a square of the mean colour, resize, normalise: ``[3, S, S]`` (for a
        cgclip tiny CLIP: resize to its 2:1 crop size instead)."""
        image = image.convert("RGB")
        if self.crop_encoder is not None:
            crop = np.asarray(image.resize((self.crop_size[1], self.crop_size[0]), Image.BICUBIC))
            return to_pixels(crop[None])[0]
        side = max(image.size)
        canvas = Image.new("RGB", (side, side), tuple(int(255 * m) for m in CLIP_MEAN))
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        canvas = canvas.resize((self.image_size, self.image_size), Image.BICUBIC)
        arr = (np.asarray(canvas, dtype=np.float32) / 255.0 - np.array(CLIP_MEAN, np.float32)) / np.array(
            CLIP_STD, np.float32
        )
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """``[len(images), d]`` normalised image features."""
        chunks = []
        for i in range(0, len(images), batch_size):
            pixels = torch.stack([self.preprocess(im) for im in images[i : i + batch_size]]).to(self.device)
            if self.crop_encoder is not None:
                chunks.append(self._features(self.crop_encoder.encode_image(pixels)).cpu())
            else:
                chunks.append(self._features(self.model.get_image_features(pixel_values=pixels)).cpu())
        return torch.cat(chunks)

    @property
    def logit_scale(self) -> float:
        """CLIP's learned temperature (exp of the logit scale), capped at 100 as in CLIP."""
        return float(min(100.0, self.model.logit_scale.exp().item()))
