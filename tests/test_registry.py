"""The model and dataset registries: one declaration per name, read by configuration, build_model and the loaders."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cgclip.config import CHOICES, DATASET_KINDS, MODEL_DATA_DEFAULTS, MODEL_DEFAULTS, ModelConfig, load_config
from cgclip.data import DATASETS, detect_dataset, load_dataset
from cgclip.demo import MODELS as DEMO_MODELS
from cgclip.errors import ConfigError, DataError
from cgclip.models import MODEL_NAMES, build_model
from cgclip.registry import DATASETS as DATASET_REGISTRY
from cgclip.registry import MODELS, Registry
from fixtures_models import TinyImageEncoder


def test_every_reader_of_model_and_dataset_names_reads_the_registry():
    assert MODEL_NAMES == DEMO_MODELS == CHOICES["model.name"] == MODELS.names() == ("tap", "tfclip", "cgclip")
    assert DATASETS == DATASET_REGISTRY.names() and DATASET_KINDS == ("auto", *DATASETS)
    assert MODEL_DEFAULTS["tfclip"] == {"sie": True, "sie_tokens": "cls"}
    assert MODEL_DATA_DEFAULTS["tfclip"] == {"erase_mode": "frame"}


def test_option_choices_and_bounds_are_field_metadata():
    fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    assert fields["cmr_fusion"].metadata["choices"] == ("a", "b", "c") == CHOICES["model.cmr_fusion"]
    with pytest.raises(ConfigError, match=r"model\.label_smoothing: 1\.0 is outside \[0, 1\)"):
        load_config("tiny", ["model.label_smoothing=1.0"])
    with pytest.raises(ConfigError, match=r"optim\.lr: nan is outside"):
        load_config("tiny", ["optim.lr=.nan"])
    with pytest.raises(ConfigError, match="model.memory_momentum"):
        build_model("tap", image_encoder=TinyImageEncoder(), num_classes=3, memory_momentum=float("nan"))


def test_a_registered_model_builds_through_build_model():
    MODELS.register("tmp", {"builder": "registry_example:build"}, label="TMP")
    try:
        model = build_model("tmp", image_encoder=TinyImageEncoder(), num_classes=3).eval()
        frames = torch.randn(2, 3, 3, 32, 16)
        tokens = model.encode_frames(frames)[:, :, 0]
        assert torch.allclose(model.extract(frames), tokens.max(dim=1).values, atol=1e-6)
    finally:
        MODELS.unregister("tmp")
    with pytest.raises(ConfigError, match="unknown model 'tmp'; choose one of tap, tfclip, cgclip"):
        build_model("tmp", image_encoder=TinyImageEncoder(), num_classes=3)


def test_a_registered_dataset_is_detected_and_loaded(tmp_path):
    (tmp_path / "tracklets.txt").write_text("train 0 0 a.jpg b.jpg\nquery 5 0 c.jpg\ngallery 5 1 d.jpg\n")
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        detect_dataset(tmp_path)
    DATASET_REGISTRY.register(
        "lines",
        {"loader": "registry_example:load_lines", "detector": "registry_example:detect"},
        description="a tracklets.txt",
    )
    try:
        assert detect_dataset(tmp_path) == "lines"
        ds = load_dataset("lines", tmp_path)
        assert [t.pid for t in ds.query] == [5] and len(ds.train[0].frames) == 2
    finally:
        DATASET_REGISTRY.unregister("lines")
    with pytest.raises(DataError, match="unknown dataset 'lines'"):
        load_dataset("lines", tmp_path)


def test_registry_refuses_a_name_twice_and_names_the_known_ones():
    reg = Registry("widget")
    reg.register("a", {"make": "math:sqrt"}, size=1)
    with pytest.raises(ValueError, match="twice"):
        reg.register("a", {"make": "math:sqrt"})
    assert reg["a"].load("make")(4.0) == 2.0 and reg.meta("a", "size") == 1 and "a" in reg
    with pytest.raises(ConfigError, match="unknown widget 'b'; choose one of a"):
        reg["b"]
