"""The main job end to end, on the embedded default: synthetic worlds → VReID datasets → captions → tiny CLIP →
TAP, TF-CLIP and CG-CLIP trained and evaluated on each world → ``results.json``, a Markdown table and pictures.

Every step writes into the output folder and is skipped when its output is already there, so an interrupted demo
resumes where it stopped (training runs resume from their last epoch checkpoint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cgclip.demo.settings import MODELS, WORLDS, DemoSettings, demo_settings
from cgclip.errors import ConfigError
from cgclip.eval.results import percent, read_results, write_results
from cgclip.io_utils import atomic_write_text, check_output_dir, read_json

log = logging.getLogger(__name__)

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def prepare_world(kind: str, out: Path, seed: int, settings: DemoSettings, say: Say = _quiet) -> Path:
    """Generate the synthetic ``kind`` world and build its VReID dataset; returns the dataset folder."""
    from cgclip.data.vreid_builder import build_vreid
    from cgclip.synth import generate_world

    world_dir, ds_dir = out / "worlds" / kind, out / "datasets" / kind
    say(f"[{kind}] synthetic world → {world_dir}")
    generate_world(kind, world_dir, seed, preset=settings.world_preset, workers=0, **settings.world_sizes)
    if not (ds_dir / "manifest.json").is_file():
        say(f"[{kind}] building the VReID dataset → {ds_dir}")
        build_vreid(
            world_dir,
            ds_dir,
            world_dir / "identities.csv",
            world_dir / "track_mapping.csv",
            min_height=settings.min_height,
            seed=seed,
        )
    return ds_dir


def write_captions(kind: str, ds_dir: Path, out: Path, say: Say = _quiet) -> Path:
    """Captions from the world's identity table (10 paraphrases per identity), as ``caption from-annotations``."""
    from cgclip.captions.load import captions_from_rows
    from cgclip.captions.store import CaptionStore
    from cgclip.data.identity_table import read_identity_table

    path = out / "captions" / f"{kind}.jsonl"
    if not path.is_file():
        rows = [r for r in read_identity_table(ds_dir / "identities.csv") if r.split == "train"]
        store = CaptionStore(path)
        added = store.add(captions_from_rows(rows, 10, 0))
        say(f"[{kind}] {added} captions for {len(rows)} train identities → {path}")
    return path


def prepare_clip(clip_dir: str | Path | None, say: Say = _quiet) -> Path:
    """The CLIP checkpoint to fine-tune: ``clip_dir`` if given, else the embedded tiny CLIP shipped with the package
    (verified against its manifest; nothing is pretrained here)."""
    from cgclip.clip.backbone import check_clip_dir
    from cgclip.clip.embedded import embedded_clip_dir

    if clip_dir is not None:
        check_clip_dir(Path(clip_dir))
        return Path(clip_dir)
    path = embedded_clip_dir()
    say(f"embedded tiny CLIP: {path}")
    report = path / "pretrain_report.json"
    acc = read_json(report).get("zero_shot", {}).get("attributes", {}) if report.is_file() else {}
    if acc:
        say(
            "  zero-shot attribute accuracy on held-out crops: "
            + ", ".join(
                f"{k} {v['accuracy']:.2f} (chance {v['chance']:.2f})"
                for k, v in acc.items()
                if isinstance(v, dict) and "accuracy" in v
            )
        )
    return path


def run_config(
    kind: str,
    model: str,
    ds_dir: Path,
    captions: Path,
    clip: Path,
    seed: int,
    settings: DemoSettings,
    overrides: Sequence[str] = (),
) -> tuple[Any, str]:
    """The demo's configuration of ``model`` on the ``kind`` world (the ``tiny`` preset, the settings' overrides,
    then ``overrides``) and its results key (:func:`cgclip.train.results_key.results_key`)."""
    from cgclip.config import load_config
    from cgclip.train.results_key import clip_fingerprint, results_key

    cfg = load_config(
        "tiny",
        [
            f"model.name={model}",
            f"model.clip_path={clip}",
            f"data.root={ds_dir}",
            "data.kind=vreid",
            f"data.captions={captions}",
            f"train.seed={seed}",
            *settings.train_overrides,
            *overrides,
        ],
    )
    key = results_key(
        cfg,
        world=kind,
        seed=seed,
        world_preset=settings.world_preset,
        world_sizes=settings.world_sizes,
        min_height=settings.min_height,
        clip=clip_fingerprint(clip),
    )
    return cfg, key


def train_and_evaluate(
    kind: str,
    model: str,
    ds_dir: Path,
    captions: Path,
    clip: Path,
    out: Path,
    seed: int,
    settings: DemoSettings,
    say: Say = _quiet,
    run_name: str | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Train ``model`` on the ``kind`` dataset with the ``tiny`` preset and evaluate it; returns its results.

    The run goes to ``out/runs/<kind>/<run_name or model>``; ``overrides`` (``key=value``) apply after the demo's own
    (the ablation benchmark uses them to switch one option). A finished run is reused only when its results key
    (:func:`cgclip.train.results_key.results_key`: resolved configuration, data, CLIP, results version) matches; an
    unfinished one is resumed only then; a stale run folder is moved to ``out/runs/<kind>/.stale/``.
    """
    from cgclip.train.inference import evaluate_run
    from cgclip.train.run_dir import RunDir
    from cgclip.train.trainer import train

    name = run_name or model
    run_dir = out / "runs" / kind / name
    results = run_dir / "results.json"
    cfg, key = run_config(kind, model, ds_dir, captions, clip, seed, settings, overrides)
    if results.is_file() and read_results(results).get("results_key") == key:
        say(f"[{kind}] {name}: already trained and evaluated ({results})")
        return read_results(results)
    _set_aside_if_stale(run_dir, key, say)
    start = time.perf_counter()
    say(f"[{kind}] training {name} ({cfg.train.epochs} epochs) → {run_dir}")
    resume = RunDir(run_dir).has_checkpoint()
    train(
        cfg, run_dir, resume=resume, on_epoch=lambda rec: say(_epoch_line(kind, name, rec)), command=["cgclip", "demo"]
    )
    train_s = time.perf_counter() - start
    res = evaluate_run(run_dir)
    res.setdefault("timing", {})["train_s"] = round(train_s, 1)
    res["results_key"] = key
    res = write_results(results, res)
    say(f"[{kind}] {name}: test mAP {percent(res['mAP']):.1f}, Rank-1 {percent(res['rank1']):.1f}")
    return res


def _set_aside_if_stale(run_dir: Path, key: str, say: Say) -> None:
    """Move ``run_dir`` to ``.stale/`` unless its key file says it was started for ``key``; then record ``key``."""
    key_file = run_dir.parent / f"{run_dir.name}.key"
    old = key_file.read_text().strip() if key_file.is_file() else "unkeyed"
    if run_dir.exists() and old != key:
        stale = run_dir.parent / ".stale" / f"{run_dir.name}-{old}"
        n = 1
        while stale.exists():
            stale, n = stale.with_name(f"{run_dir.name}-{old}-{n}"), n + 1
        stale.parent.mkdir(parents=True, exist_ok=True)
        run_dir.rename(stale)
        say(f"[{run_dir.parent.name}] {run_dir.name}: made by another configuration or code version; moved to {stale}")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(key_file, key + "\n")


def _epoch_line(kind: str, model: str, rec: dict[str, Any]) -> str:
    parts = [f"[{kind}] {model} epoch {rec.get('epoch')}", f"loss {rec.get('loss', float('nan')):.3f}"]
    if isinstance(rec.get("val"), dict) and "mAP" in rec["val"]:
        parts.append(f"val mAP {percent(rec['val']['mAP']):.1f}")
    if rec.get("tracklets_per_s"):
        parts.append(f"{rec['tracklets_per_s']:.1f} tracklets/s")
    return ", ".join(parts)


#: Written into every demo folder, so a rerun recognises (and resumes) its own folder.
DEMO_MARKER = ".cgclip-demo"


def _is_demo_dir(out: Path) -> bool:
    """Whether ``out`` is a folder an earlier ``cgclip demo`` wrote: its marker file, nothing else (a user's folder
    that happens to hold ``worlds/`` and ``datasets/`` is not ours to write into)."""
    return (out / DEMO_MARKER).is_file()


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    worlds: Sequence[str] = WORLDS,
    models: Sequence[str] = MODELS,
    clip_dir: str | Path | None = None,
    pictures: bool = True,
    say: Say = _quiet,
    settings: DemoSettings | None = None,
) -> dict[str, Any]:
    """Run the whole demo into ``out`` and return the summary written to ``out/results.json``.

    Args:
        out: output folder (created; an existing one is resumed).
        quick: the short first-look settings (:func:`cgclip.demo.settings.demo_settings`).
        seed: seed of the worlds and of training.
        worlds: synthetic worlds to run ("sports", "dance").
        models: models to train (registered names, :data:`cgclip.registry.MODELS`).
        clip_dir: a CLIP checkpoint directory to use instead of the embedded tiny CLIP.
        pictures: also draw the ranking grid, t-SNE and TFE attention pictures.
        say: receives one line per step (the CLI prints them).
        settings: explicit sizes instead of the default / ``quick`` ones (tests use tiny worlds).
    """
    from cgclip.demo.report import write_report

    if not worlds or not models:
        raise ConfigError(
            f"no {'world' if not worlds else 'model'} to run: name at least one ({', '.join(WORLDS)} / "
            f"{', '.join(MODELS)})"
        )
    worlds, models = list(dict.fromkeys(worlds)), list(dict.fromkeys(models))
    unknown = [w for w in worlds if w not in WORLDS] + [m for m in models if m not in MODELS]
    if unknown:
        raise ConfigError(
            f"unknown world or model {', '.join(unknown)}; worlds: {', '.join(WORLDS)}; models: {', '.join(MODELS)}"
        )
    out = Path(out)
    check_output_dir(out, _is_demo_dir, fix="choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).touch()
    settings = settings or demo_settings(quick)
    start = time.perf_counter()
    datasets = {kind: prepare_world(kind, out, seed, settings, say) for kind in worlds}
    captions = {kind: write_captions(kind, datasets[kind], out, say) for kind in worlds}
    clip = prepare_clip(clip_dir, say)
    results: dict[str, dict[str, Any]] = {}
    for kind in worlds:
        for model in models:
            results.setdefault(kind, {})[model] = train_and_evaluate(
                kind, model, datasets[kind], captions[kind], clip, out, seed, settings, say
            )
    summary = write_report(
        out, results, settings=settings, seed=seed, quick=quick, clip=clip, elapsed_s=time.perf_counter() - start
    )
    if pictures:
        from cgclip.demo.pictures import draw_pictures

        summary["pictures"] = draw_pictures(out, datasets, say)
        summary = write_results(out / "results.json", summary)
    return summary


__all__ = [
    "prepare_clip",
    "prepare_world",
    "run_config",
    "run_demo",
    "train_and_evaluate",
    "write_captions",
    "demo_settings",
]
