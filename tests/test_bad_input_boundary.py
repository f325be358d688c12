"""Bad input caught at the boundary (issue 28): every option checked where it is declared (NaN and infinity too),
outputs checked before any work, damaged files named by one checked reader, caches keyed on what changes them,
degenerate training data refused. Each case is one line on stderr (exit 2) or a named exception, and nothing is
written."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgclip.cli import main  # noqa: E402
from cgclip.config import load_config  # noqa: E402
from cgclip.errors import CheckpointError, ConfigError, DataError, EvaluationError  # noqa: E402
from fixtures_train import ONE_STEP, tiny_dataset, write_tiny_clip  # noqa: E402


def _one_line_error(capsys, argv: list[str], expect: str) -> str:
    """Run the CLI; it must stop with status 2 and one error line holding ``expect`` (after argparse's usage lines
    when argparse's own type check refused the value)."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: usage lines, then the one error line
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert expect in last, err
    assert "unexpected error" not in err and "Traceback" not in err, err
    assert last.startswith("cgclip") and (err == last or err.startswith("usage:")), err
    return last


# --- numbers: every numeric option refuses NaN, infinity and values outside its range, naming option and range ---

OPTION_CASES = {
    "pretrain lr negative": (["pretrain-clip", "--lr", "-0.01"], "--lr: -0.01 is outside (0, inf)"),
    "pretrain caption mix nan": (["pretrain-clip", "--caption-mix", "nan", "1", "1"], "--caption-mix: nan is outside"),
    "pretrain identities 0": (["pretrain-clip", "--identities", "0"], "--identities: 0 is outside [1, inf)"),
    "pretrain minutes inf": (["pretrain-clip", "--minutes", "inf"], "--minutes: inf is outside (0, inf)"),
    "train seed negative": (["train", "--dataset", "{t}", "--seed", "-1"], "train.seed: -1 is outside [0, 4294967295]"),
    "train lr nan": (["train", "--dataset", "{t}", "--set", "optim.lr=.nan"], "optim.lr: nan is outside"),
    "train p of one": (["train", "--dataset", "{t}", "--set", "data.p=1"], "data.p: 1 is outside [2, inf)"),
    "train k of one": (["train", "--dataset", "{t}", "--set", "data.k=1"], "no positive pair"),
    "caption attributes max frames 0": (
        ["caption", "attributes", "{t}", "--out", "{t}/a.jsonl", "--max-frames", "0"],
        "--max-frames: 0 is outside [1, inf)",
    ),
    "build-mot visibility nan": (
        ["build-mot", "--mot", "{t}", "--out", "{t}/ds", "--min-visibility", "nan"],
        "--min-visibility: nan is outside [0, 1]",
    ),
    "search nprobe 0": (["search", "--gallery", "{t}/g", "--query", "0", "--nprobe", "0"], "--nprobe: 0 is outside"),
    "search hnsw m 0": (["search", "--gallery", "{t}/g", "--query", "0", "--hnsw-m", "0"], "--hnsw-m: 0 is outside"),
    "search hnsw m -2": (["search", "--gallery", "{t}/g", "--query", "0", "--hnsw-m", "-2"], "--hnsw-m: -2 is outside"),
    "search ef search 0": (["search", "--gallery", "{t}/g", "--query", "0", "--ef-search", "0"], "--ef-search: 0"),
    "search topk nan": (["search", "--gallery", "{t}/g", "--query", "0", "--topk", "nan"], "not an integer"),
    "demo no world": (["demo", "--worlds", ",", "--out", "{t}/demo"], "no world to run"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_bad_numbers_are_refused_before_any_work(tmp_path, capsys, case):
    args, expect = OPTION_CASES[case]
    argv = [a.format(t=tmp_path) for a in args]
    if argv[0] == "pretrain-clip":
        argv += ["--out", str(tmp_path / "clip")]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "run")]
    _one_line_error(capsys, argv, expect)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "something was written"


def test_option_checks_are_the_library_checks_too():
    from cgclip.config_sections import option
    from cgclip.pretrain.config import PretrainConfig, check_pretrain_config

    with pytest.raises(ConfigError, match=r"^lr: inf is outside \(0, inf\)"):
        check_pretrain_config(PretrainConfig(lr=float("inf")))
    with pytest.raises(ConfigError, match="group_fraction: 1.5 is outside"):
        check_pretrain_config(PretrainConfig(group_fraction=1.5))
    with pytest.raises(ConfigError, match="seed: expected a number"):
        check_pretrain_config(PretrainConfig(seed="zero"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"--identities: 0"):
        check_pretrain_config(
            PretrainConfig(train_identities_per_kind=0), {"train_identities_per_kind": "--identities"}
        )
    assert option(1, bounds=(0, 1), open_min=True).metadata == {"bounds": (0, 1), "open_min": True}


def test_dataset_options_and_image_size_are_checked(tmp_path):
    from cgclip.clip.pos_embed import grid_for_image
    from cgclip.data import load_dataset
    from fixtures_reid import write_mars

    write_mars(tmp_path)
    with pytest.raises(ConfigError, match=r"data.options: 'test_half' is not an option of the mars loader"):
        load_dataset("mars", tmp_path, test_half="second")
    with pytest.raises(ConfigError, match=r"data.image_size: 8x4 is smaller than the CLIP's patch size 16"):
        grid_for_image((8, 4), 16)


# --- FAISS: parameters are checked before FAISS sees them, and HNSW returns topk results however small ef_search ---


def test_faiss_parameters_are_checked_in_the_library():
    pytest.importorskip("faiss")
    from cgclip.eval.search import SearchIndex

    feats = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    for bad in ({"hnsw_m": 0}, {"hnsw_m": -2}, {"ef_search": 0}, {"nprobe": 0}, {"hnsw_m": 2.5}):
        kind = "ivf" if "nprobe" in bad else "hnsw"
        with pytest.raises(EvaluationError, match=f"--{next(iter(bad)).replace('_', '-')}"):
            SearchIndex.build(feats, kind, **bad)
    index = SearchIndex.build(feats, "hnsw", ef_search=1)
    scores, idx = index.search(feats[:3], topk=5)
    assert idx.shape == (3, 5) and (idx >= 0).all()
    with pytest.raises(EvaluationError, match="--nprobe"):
        SearchIndex.build(feats, "ivf", nlist=4).set_search_params(nprobe=0)


# --- outputs: checked before work; a symlinked file is written through ---


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (a folder nobody can create files in)")
def test_an_output_folder_nobody_can_write_is_refused_before_work(tmp_path, capsys):
    err = _one_line_error(capsys, ["pretrain-clip", "--out", "/proc/self/cgclip-out", "--steps", "1"], "cannot write")
    assert "/proc/self" in err
    _one_line_error(
        capsys,
        ["caption", "report", "--captions", str(_store(tmp_path)), "--out", "/proc/self/r.json"],
        "cannot write",
    )


def test_a_symlink_loop_is_refused_before_work(tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    _one_line_error(capsys, ["pretrain-clip", "--out", str(tmp_path / "a" / "clip"), "--steps", "1"], "cannot be used")


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "caps.jsonl"
    store.write_text('{"identity": "A", "text": "a man in a red shirt", "source": "annotation"}\n')
    return store


def test_a_symlinked_file_is_written_through_not_replaced(tmp_path):
    from cgclip.captions.store import CaptionRecord, CaptionStore
    from cgclip.io_utils import atomic_write_text

    shared = tmp_path / "shared"
    shared.mkdir()
    target = _store(shared)
    link = tmp_path / "captions.jsonl"
    link.symlink_to(target)
    store = CaptionStore(link)
    store.add([CaptionRecord(identity="B", text="a woman in a blue dress", source="annotation")])
    assert link.is_symlink() and "blue dress" in target.read_text()
    atomic_write_text(link, "replaced\n")
    assert link.is_symlink() and target.read_text() == "replaced\n"


def test_the_demo_recognises_its_folders_by_its_marker_only(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "worlds").mkdir(parents=True)
    (out / "datasets").mkdir()
    _one_line_error(capsys, ["demo", "--quick", "--out", str(out)], "cgclip did not write")
    assert sorted(p.name for p in out.iterdir()) == ["datasets", "worlds"]


# --- damaged files: one checked reader names the file and the problem ---


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    from cgclip.clip import embedded

    copy = tmp_path / embedded.EMBEDDED_NAME
    shutil.copytree(embedded.packaged_dir(), copy)
    monkeypatch.setattr(embedded, "packaged_dir", lambda: copy)
    return copy


@pytest.mark.parametrize("damage", ["list manifest", "sha256 not a map", "weights a folder", "not json", "uncovered"])
def test_a_damaged_shipped_clip_is_one_line_with_the_rebuild_command(shipped_copy, damage):
    from cgclip.clip.embedded import RECIPE_COMMAND, embedded_clip_dir

    manifest = shipped_copy / "manifest.json"
    data = json.loads(manifest.read_text())
    if damage == "list manifest":
        manifest.write_text(json.dumps([data]))
    elif damage == "sha256 not a map":
        manifest.write_text(json.dumps({**data, "sha256": list(data["sha256"])}))
    elif damage == "weights a folder":
        (shipped_copy / "model.safetensors").unlink()
        (shipped_copy / "model.safetensors").mkdir()
        (shipped_copy / "model.safetensors" / "x").write_text("x")
    elif damage == "not json":
        manifest.write_text("{")
    else:
        del data["sha256"]["model.safetensors"]
        manifest.write_text(json.dumps(data))
    with pytest.raises(CheckpointError) as info:
        embedded_clip_dir()
    message = str(info.value)
    assert RECIPE_COMMAND.split(" --out")[0] in message and len(message.splitlines()) == 1, message


@pytest.mark.parametrize("damage", ["truncated", "pickled", "wrong fields"])
def test_a_damaged_pretraining_state_is_one_line(tmp_path, damage):
    from cgclip.pretrain.state import STATE_NAME, load_state, save_state

    module = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    save_state(tmp_path, {"a": 1}, {"m": module}, opt, rng, {"step": 3})
    state = tmp_path / STATE_NAME
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:200])
    elif damage == "pickled":
        torch.save({"modules": {"m": module.state_dict()}, "evil": np.random.default_rng(0)}, state)
    else:
        torch.save({"modules": {}}, state)
    with pytest.raises(CheckpointError, match="cannot resume .*delete this folder"):
        load_state(tmp_path, {"a": 1}, {"m": module}, opt, rng)


def test_a_caption_failure_with_a_non_numeric_count_is_named(tmp_path):
    from cgclip.captions.store import CaptionStore

    store = _store(tmp_path)
    failures = CaptionStore(store).failures_path
    failures.write_text('{"task": "mllm", "item": "f1", "identity": "A", "error": "x", "attempts": "many"}\n')
    with pytest.raises(DataError, match=r"failures.jsonl:1: failure record has 'attempts' 'many', not a count"):
        CaptionStore(store)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from cgclip.train.trainer import train

    root = tmp_path_factory.mktemp("boundary")
    clip = write_tiny_clip(root / "clip")
    dataset = tiny_dataset(root / "data", num_train=4, num_test=2)
    cfg = load_config(
        "tiny",
        [
            "model.name=tap",
            f"model.clip_path={clip}",
            "data.image_size=[32,16]",
            *ONE_STEP,
        ],
    )
    train(cfg, root / "run", dataset=dataset)
    return root / "run", dataset, cfg


def _damaged_run(tiny_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run[0], run)
    return run


@pytest.mark.parametrize(
    "damage, expect",
    [
        ("extra key", "unknown key 'surprise'"),
        ("unknown option", "unknown model option 'dropout_everywhere'"),
        ("option out of range", "model.label_smoothing: 3"),
        ("bad image size", "'image_size' should be [H, W]"),
        ("not an object", "expected a JSON object"),
        ("unknown stem", "cannot build the CLIP image tower"),
    ],
)
def test_a_damaged_run_folder_is_named(tiny_run, tmp_path, damage, expect):
    from cgclip.train.inference import load_run_model

    run = _damaged_run(tiny_run, tmp_path)
    info_path = run / "model.json"
    info = json.loads(info_path.read_text())
    if damage == "extra key":
        info["surprise"] = 1
    elif damage == "unknown option":
        info["model"]["dropout_everywhere"] = 0.5
    elif damage == "option out of range":
        info["model"]["label_smoothing"] = 3
    elif damage == "bad image size":
        info["image_size"] = [32]
    elif damage == "not an object":
        info = [info]
    else:
        clip_config = run / "clip" / "config.json"
        config = json.loads(clip_config.read_text())
        config["vision_config"]["cgclip_stem"] = {"type": "transformer"}
        clip_config.write_text(json.dumps(config))
    info_path.write_text(json.dumps(info))
    with pytest.raises(CheckpointError) as err:
        load_run_model(run, "final")
    assert expect in str(err.value) and len(str(err.value).splitlines()) == 1, str(err.value)


# --- caches: keyed on everything that changes the features ---


def test_the_feature_cache_is_keyed_on_every_model_option(tiny_run, tmp_path, monkeypatch):
    import dataclasses

    from cgclip.train import inference

    run, dataset, cfg = tiny_run
    seen: list[str] = []
    monkeypatch.setattr(
        inference, "extract_features", lambda *a, **k: seen.append(Path(k["cache_dir"]).name) or torch.zeros(1)
    )
    model, info = inference.load_run_model(run, "final")
    for neck in ("before", "after"):
        for tfe_norm in (False, True):
            changed = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, neck_feat=neck, tfe_norm=tfe_norm))
            inference.extract_run_features(
                model,
                info,
                dataset.query,
                cfg=changed,
                device=torch.device("cpu"),
                precision="fp32",
                cache_dir=tmp_path,
            )
    assert len(set(seen)) == 4, seen


# --- degenerate data: losses that would be undefined are refused before the run folder is written ---


def test_training_on_one_identity_is_refused_before_work(tmp_path):
    from cgclip.train.trainer import train

    clip = write_tiny_clip(tmp_path / "clip")
    dataset = tiny_dataset(tmp_path / "data", num_train=1, num_test=2)
    cfg = load_config(
        "tiny",
        [
            "model.name=tap",
            f"model.clip_path={clip}",
            "data.image_size=[32,16]",
            "data.p=2",
            "data.k=2",
            "data.val_identities=0",
        ],
    )
    with pytest.raises(DataError, match="at least 2 identities"):
        train(cfg, tmp_path / "run", dataset=dataset)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "setting, expect",
    [("data.p=100", "a batch needs p=100"), ("data.image_size=[8,4]", "smaller than the CLIP's patch size 8")],
)
def test_a_refused_training_leaves_no_run_folder(tmp_path, setting, expect):
    from cgclip.train.trainer import train

    clip = write_tiny_clip(tmp_path / "clip")
    dataset = tiny_dataset(tmp_path / "data", num_train=3, num_test=2)
    base = ["model.name=tap", f"model.clip_path={clip}", "data.image_size=[32,16]", "data.k=2"]
    cfg = load_config("tiny", [*base, "data.p=2", "data.val_identities=0", setting])
    with pytest.raises(ConfigError, match=re.escape(expect)):
        train(cfg, tmp_path / "run", dataset=dataset)
    assert not (tmp_path / "run").exists()


def test_build_mot_reads_its_input_before_it_creates_the_output(tmp_path, capsys):
    (tmp_path / "mot").mkdir()
    _one_line_error(capsys, ["build-mot", "--mot", str(tmp_path / "mot"), "--out", str(tmp_path / "ds")], "not found")
    assert not (tmp_path / "ds").exists()


def test_identity_splits_no_identity_has_are_refused(tmp_path, capsys):
    from fixtures_train import write_identity_table

    table = write_identity_table(tmp_path / "identities.csv", ["A", "B"])
    out = tmp_path / "c.jsonl"
    err = _one_line_error(
        capsys, ["caption", "from-annotations", str(table), "--out", str(out), "--identity-splits", "tran"], "'tran'"
    )
    assert "the splits here are train" in err and not out.exists()


def test_awkward_paths_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    long = "x" * 300
    _one_line_error(capsys, ["pretrain-clip", "--out", long, "--steps", "1"], "File name too long")
    _one_line_error(capsys, ["demo", "--quick", "--out", f"{long}/demo"], "File name too long")
    _one_line_error(capsys, ["search", "--gallery", "", "--query", "0"], "an empty argument after --gallery")
    _one_line_error(capsys, ["search", "--gallery", "g", "--query", "0", "--out", ""], "an empty argument after --out")
    store = _store(tmp_path)
    if Path("/dev/full").exists():
        _one_line_error(capsys, ["caption", "report", "--captions", str(store), "--out", "/dev/full"], "a device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caps.jsonl"]


def test_a_pipe_is_not_read_as_a_file(tmp_path):
    import os

    from cgclip.io_utils import read_json, read_text

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="a device or a pipe"):
        read_text(fifo)
    with pytest.raises(Exception, match="not a regular file"):
        read_json(fifo)


def test_split_on_a_dataset_without_people_splits_is_refused(tiny_run, tmp_path):
    from cgclip.train.inference import open_run
    from fixtures_reid import write_mars

    write_mars(tmp_path / "mars")
    with pytest.raises(ConfigError, match="--split chooses an iLIDS-VID people split; this mars dataset"):
        open_run(tiny_run[0], tmp_path / "mars", settings={"data.split": 3})
