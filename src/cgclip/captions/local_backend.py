"""Captioning with a local ``transformers`` model loaded from a directory (never downloaded), batched, CPU or GPU.

Supported model kinds:

* image-text-to-text models (``AutoModelForImageTextToText``: SmolVLM, Florence-2, BLIP, LLaVA, Qwen-VL, ...).
  With a chat template the prompt and image go in one user turn; without one the model captions the image alone, or
  continues ``prefix`` (e.g. ``"<MORE_DETAILED_CAPTION>"`` for Florence-2, ``"a photo of"`` for BLIP).
* vision-encoder-decoder captioners (a ``VisionEncoderDecoderModel``: ViT + GPT-2 and the like): image only.
* text-only causal LMs (``AutoModelForCausalLM``): for caption augmentation and translation (no images).

Greedy decoding by default; an unreadable image or a failing batch becomes failed results, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from cgclip.captions.mllm import GenerationResult, GenerationTask, clean_reply
from cgclip.errors import CgclipError, CheckpointError
from cgclip.io_utils import check_safe_weights
from cgclip.runtime import precision_dtype, resolve_device, resolve_precision

logger = logging.getLogger(__name__)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The model dtype of a precision on ``device`` (:mod:`cgclip.runtime`: ``auto``, ``bf16``, ``fp16``, ``fp32``;
    ``float32``/``float16``/``bfloat16`` are read as those)."""
    return precision_dtype(resolve_precision(dtype, device))


class LocalBackend:
    """A ``transformers`` captioner from ``model_dir``; see the module docstring for the kinds it loads."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        batch_size: int = 8,
        max_new_tokens: int = 96,
        prefix: str | None = None,
        trust_remote_code: bool = False,
        generate_kwargs: dict[str, Any] | None = None,
        dtype: str | None = None,
    ) -> None:
        """Load the model of ``model_dir`` on ``device`` in the dtype of ``precision`` (:mod:`cgclip.runtime`;
        ``dtype`` is its old name, kept for one release)."""
        from transformers import AutoConfig

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise CheckpointError("no config.json; pass a local Hugging Face model directory", path=self.model_dir)
        check_safe_weights(self.model_dir)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype or precision, self.device)
        self.batch_size = max(1, batch_size)
        self.prefix = prefix
        self.generate_kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False, **(generate_kwargs or {})}
        self.model_name = self.model_dir.name
        opts = {"local_files_only": True, "trust_remote_code": trust_remote_code}
        weights = {"use_safetensors": True}  # never fall back to a pickle file
        try:
            config = AutoConfig.from_pretrained(str(self.model_dir), **opts)
            self.kind, self.model = self._load_model(config, {**opts, **weights})
            self._load_preprocessing(opts)
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"cannot load the model ({type(exc).__name__}: {str(exc)[:160]}); pass a complete "
                "local model directory (config, weights, processor/tokenizer)",
                path=self.model_dir,
            ) from exc
        self.model.to(self.device).eval()
        logger.info("loaded %s model %s on %s (%s)", self.kind, self.model_dir, self.device, self.dtype)

    def _load_model(self, config: Any, opts: dict[str, Any]) -> tuple[str, Any]:
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, VisionEncoderDecoderModel

        path = str(self.model_dir)
        if config.model_type == "vision-encoder-decoder":
            return "ved", VisionEncoderDecoderModel.from_pretrained(path, dtype=self.dtype, **opts)
        try:
            return "vision", AutoModelForImageTextToText.from_pretrained(path, dtype=self.dtype, **opts)
        except ValueError:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype, **opts)
        # A causal LM that ships an image processor (remote-code multimodal models register themselves this way)
        has_images = any((self.model_dir / n).is_file() for n in ("preprocessor_config.json", "processor_config.json"))
        return ("vision" if has_images else "text"), model

    def _load_preprocessing(self, opts: dict[str, Any]) -> None:
        from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

        path = str(self.model_dir)
        self.processor = self.image_processor = None
        if self.kind == "ved":
            self.image_processor = AutoImageProcessor.from_pretrained(path, **opts)
            self.tokenizer = AutoTokenizer.from_pretrained(path, **opts)
        elif self.kind == "vision":
            self.processor = AutoProcessor.from_pretrained(path, **opts)
            self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(path, **opts)
        if not getattr(self.model.config, "is_encoder_decoder", False) and hasattr(self.tokenizer, "padding_side"):
            self.tokenizer.padding_side = "left"
        if getattr(self.tokenizer, "pad_token", "x") is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def chat(self) -> bool:
        """Whether prompts go through the model's chat template."""
        holder = self.processor if self.kind == "vision" else self.tokenizer
        return bool(getattr(holder, "chat_template", None)) and self.kind != "ved"

    # ------------------------------------------------------------------------------------------------ batching
    def _inputs(self, tasks: Sequence[GenerationTask], images: list[Any] | None) -> Any:
        if self.kind == "ved":
            return self.image_processor(images=images, return_tensors="pt")
        if self.chat:
            texts = []
            for t in tasks:
                content: list[dict[str, Any]] = [{"type": "image"}] if images is not None else []
                content.append({"type": "text", "text": t.prompt})
                holder = self.processor if self.kind == "vision" else self.tokenizer
                messages = [{"role": "user", "content": content if self.kind == "vision" else t.prompt}]
                texts.append(holder.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        elif images is not None:
            texts = [self.prefix] * len(tasks) if self.prefix else None
        else:
            texts = [t.prompt for t in tasks]
        if self.kind == "text":
            return self.tokenizer(texts, return_tensors="pt", padding=True)
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if texts is not None:
            kwargs.update(text=texts, padding=True)
        if images is not None:
            kwargs["images"] = images
        return self.processor(**kwargs)

    def _generate_batch(self, tasks: Sequence[GenerationTask], images: list[Any] | None) -> list[str]:
        inputs = self._inputs(tasks, images)
        moved = {}
        for k, v in dict(inputs).items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device)
                if v.is_floating_point():
                    v = v.to(self.dtype)
            moved[k] = v
        with torch.inference_mode():
            out = self.model.generate(**moved, **self.generate_kwargs)
        ids = moved.get("input_ids")
        if ids is not None and out.shape[1] > ids.shape[1] and torch.equal(out[:, : ids.shape[1]], ids):
            out = out[:, ids.shape[1] :]
        decoder = (
            self.processor if self.processor is not None and hasattr(self.processor, "batch_decode") else self.tokenizer
        )
        return [clean_reply(t) for t in decoder.batch_decode(out, skip_special_tokens=True)]

    def _run(self, batch: list[GenerationTask]) -> list[GenerationResult]:
        from PIL import Image

        with_images = batch[0].image is not None
        if with_images and self.kind == "text":
            raise CgclipError(
                "this model reads text only; pass an image-text-to-text model directory for image captioning",
                path=self.model_dir,
            )
        if not with_images and self.kind == "ved":
            raise CgclipError(
                "a vision-encoder-decoder captioner cannot rewrite text; use an instruction model "
                "(or the OpenAI-compatible back-end) for augmentation and translation",
                path=self.model_dir,
            )
        results: dict[str, GenerationResult] = {}
        ok_tasks, images = [], []
        for t in batch:
            if with_images:
                try:
                    with Image.open(t.image) as img:  # type: ignore[arg-type]
                        images.append(img.convert("RGB"))
                except (OSError, ValueError) as exc:
                    results[t.key] = GenerationResult(t.key, error=f"cannot read image {t.image} ({exc})", attempts=0)
                    continue
            ok_tasks.append(t)
        if ok_tasks:
            try:
                texts = self._generate_batch(ok_tasks, images if with_images else None)
                for t, text in zip(ok_tasks, texts):
                    results[t.key] = (
                        GenerationResult(t.key, text=text) if text else GenerationResult(t.key, error="empty reply")
                    )
            except (RuntimeError, ValueError, TypeError) as exc:
                if len(ok_tasks) > 1:
                    logger.warning("batch of %d failed (%s); retrying one by one", len(ok_tasks), exc)
                    for t in ok_tasks:
                        results[t.key] = self._run([t])[0]
                else:
                    results[ok_tasks[0].key] = GenerationResult(ok_tasks[0].key, error=f"{type(exc).__name__}: {exc}")
        return [results[t.key] for t in batch]

    def generate(self, tasks: Iterable[GenerationTask]) -> Iterator[GenerationResult]:
        """Yield one result per task, in batches of ``batch_size`` (image and text-only tasks batched apart)."""
        batch: list[GenerationTask] = []
        for task in tasks:
            if batch and (len(batch) >= self.batch_size or (task.image is None) != (batch[0].image is None)):
                yield from self._run(batch)
                batch = []
            batch.append(task)
        if batch:
            yield from self._run(batch)
