"""BNNeck + ID classifier, and the base class shared by the video ReID models (``cgclip``, ``tfclip``, ``tap``).

:class:`BNNeck` follows the "bag of tricks" / CLIP-ReID convention: ``BatchNorm1d`` whose bias is frozen at 0, then a
bias-free linear ID classifier (weights ~ N(0, 0.001)). The triplet loss uses the feature *before* the neck, the ID
cross-entropy the classifier logits *after* it, and retrieval uses the one :attr:`VideoReIDModel.neck_feat` names:
``before`` (the default, as TF-CLIP's and CLIP-ReID's ``TEST.NECK_FEAT: 'before'``) or ``after`` (the BN output).

:class:`VideoReIDModel` holds the (fine-tuned) image encoder and implements what every model shares: frame encoding
of ``images [B, T, 3, H, W]`` (all ``B·T`` frames in one encoder call, per-tracklet camera ids repeated per frame),
``extract`` (inference, eval mode, no gradients, no captions), ``frame_weights`` (None unless a model has TFE),
``prepare`` (no-op unless a model needs a pass over the training data; :attr:`VideoReIDModel.prepare_sampling` says
which clips it wants), ``large_lr_parameter_names`` (parameters with a larger lr; none unless a model declares them)
and ``feature_dim``. :meth:`VideoReIDModel.retrieval_feature` picks between a model's ``before`` and ``after``
features; a model with several heads (TF-CLIP) passes the concatenations it retrieves on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from cgclip.config_sections import ModelConfig, choices_of

#: Which feature retrieval uses: the one the BNNeck takes in, or its BatchNorm output.
NECK_FEATS = choices_of(ModelConfig, "neck_feat")


def neck_norm(dim: int) -> nn.BatchNorm1d:
    """The BNNeck's ``BatchNorm1d(dim)``: weight 1, bias 0 and frozen (the bias takes no gradient)."""
    bn = nn.BatchNorm1d(dim)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    bn.bias.requires_grad_(False)
    return bn


class BNNeck(nn.Module):
    """``BatchNorm1d(dim)`` with a frozen zero bias, followed by a bias-free classifier ``dim → num_classes``."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = neck_norm(dim)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``feature [B, dim]`` → ``(bn_feature [B, dim], logits [B, num_classes])``."""
        bn = self.bn(feature.to(self.bn.weight.dtype))
        return bn, self.classifier(bn)


class VideoReIDModel(nn.Module):
    """Base of the video ReID models; subclasses implement :meth:`forward`.

    Args:
        image_encoder: a module with ``forward(pixel_values [N,3,H,W], camids [N] | None) -> [N, 1+P, D]``,
            ``.width`` (D), ``.embed_dim`` (d) and ``.project(x) -> x @ W_proj`` (D → d). It is fine-tuned.
        num_classes: number of training identities.
    """

    name = "base"
    neck_feat = "before"  # NECK_FEATS; set by build_model
    #: Frame sampling of the training loader that :meth:`prepare` wants (``rrs_first``: one clip per tracklet,
    #: ``dense``: every consecutive T-frame clip, as :class:`cgclip.data.video_dataset.VideoClipDataset` names them).
    prepare_sampling = "rrs_first"

    def __init__(self, image_encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.num_classes = int(num_classes)
        self.width = int(image_encoder.width)
        self.embed_dim = int(image_encoder.embed_dim)

    @property
    def feature_dim(self) -> int:
        """Width F of the retrieval feature returned by :meth:`extract` and ``forward(...)["feature"]``."""
        raise NotImplementedError

    def retrieval_feature(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """The retrieval feature :attr:`neck_feat` names: the BNNeck's input ``before`` or its output ``after``."""
        return after if self.neck_feat == "after" else before

    def encode_frames(self, images: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        """Encode ``images [B, T, 3, H, W]`` into frame tokens ``[B, T, 1+P, D]`` with one encoder call."""
        if images.dim() != 5:
            raise ValueError(f"expected images [B, T, 3, H, W], got shape {tuple(images.shape)}")
        b, t = images.shape[:2]
        frame_camids = None
        if camids is not None:
            camids = torch.as_tensor(camids, device=images.device).long().reshape(-1)
            if camids.numel() != b:
                raise ValueError(f"got {camids.numel()} camera ids for {b} tracklets")
            frame_camids = camids.unsqueeze(1).expand(b, t).reshape(-1)  # repeat_interleave(t), ONNX-exportable
        tokens = self.image_encoder(images.flatten(0, 1), frame_camids)
        return tokens.reshape(b, t, *tokens.shape[1:])

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was_training = self.training
        self.train(False)
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def extract(self, images: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        """Retrieval feature ``[B, F]`` of tracklets ``images [B, T, 3, H, W]``: eval mode, no gradients, frames only.

        The module's train/eval mode is restored afterwards. Autocast, if wanted, is the caller's context.
        """
        with self._eval_mode():
            return self(images, camids)["feature"]

    def frame_weights(self, images: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-frame TFE attention weights ``[B, T]`` (sum 1 over frames), or None for a model without TFE."""
        return None

    def prepare(self, loader: Any) -> None:
        """Optional pass over the training loader before training (TF-CLIP's CLIP-Memory); a no-op here."""
        return None

    def large_lr_parameter_names(self) -> set[str]:
        """Names (as in ``named_parameters``) of the parameters that get ``optim.large_fc_lr_mult`` (none here)."""
        return set()

    def data_dependent_state(self) -> set[str]:
        """Names (as in ``state_dict``) of the entries tied to the training data — the ID classifiers (one row per
        identity) and the SIE camera table — which ``cgclip train --init`` re-initialises instead of loading."""
        return {k for k in self.state_dict() if ".classifier." in f".{k}" or k == "image_encoder.sie_embed"}

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, feature_dim={self.feature_dim}"


def loss_options(opts: dict[str, Any]) -> dict[str, float]:
    """The ID and triplet loss options every model takes, from resolved ``build_model`` options."""
    return {k: opts[k] for k in ("w_tri", "w_ce", "triplet_margin", "label_smoothing")}
