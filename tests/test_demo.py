"""The demo pipeline end to end on tiny worlds with a random tiny CLIP: results, table, pictures, resume."""

import json
from pathlib import Path

from cgclip.clip.random_clip import save_random_clip
from cgclip.demo import DemoSettings, run_demo


def test_demo_end_to_end_and_resume(tmp_path: Path) -> None:
    clip = tmp_path / "clip"
    save_random_clip(clip, size="tiny-vit", seed=0)
    settings = DemoSettings(
        world_preset="tiny",
        min_height=16,
        train_overrides=[
            "train.epochs=1",
            "train.eval_every=1",
            "data.val_identities=0",
            "data.p=4",
            "data.k=2",
            "data.seq_len=2",
            "data.image_size=[64,32]",
        ],
    )
    lines: list[str] = []
    out = tmp_path / "demo"
    summary = run_demo(
        out, worlds=["sports"], models=["tap", "cgclip"], clip_dir=clip, settings=settings, say=lines.append
    )
    saved = json.loads((out / "results.json").read_text())
    for model in ("tap", "cgclip"):
        res = saved["results"]["sports"][model]
        assert 0.0 <= res["mAP"] <= 100.0 and 0.0 <= res["rank1"] <= 100.0
        assert res["protocol"]["gallery_mode"] == "gallery"
    assert "| sports | CG-CLIP |" in (out / "results.md").read_text()
    assert {"sports_ranking", "sports_tsne", "sports_tfe_attention"} <= set(summary["pictures"])
    assert all(Path(p).is_file() for p in summary["pictures"].values())
    # a rerun resumes: nothing is trained again and the numbers are the same
    lines.clear()
    again = run_demo(
        out,
        worlds=["sports"],
        models=["tap", "cgclip"],
        clip_dir=clip,
        settings=settings,
        pictures=False,
        say=lines.append,
    )
    assert any("already trained and evaluated" in line for line in lines)
    assert again["results"] == summary["results"]


def test_a_run_made_for_another_results_key_is_set_aside(tmp_path: Path) -> None:
    """The demo's run cache: a run folder started for another key (configuration, world, CLIP, results version) is
    moved to ``.stale/`` before training; one started for the same key stays to be resumed."""
    from cgclip.demo.pipeline import _set_aside_if_stale

    run = tmp_path / "runs" / "sports" / "cgclip"
    run.mkdir(parents=True)
    (run / "marker.txt").write_text("old run")
    _set_aside_if_stale(run, "aaaa", print)  # no key file: a run of code before the key → set aside
    assert not run.exists() and (tmp_path / "runs/sports/.stale/cgclip-unkeyed/marker.txt").is_file()
    assert (tmp_path / "runs/sports/cgclip.key").read_text().strip() == "aaaa"
    run.mkdir()
    (run / "marker.txt").write_text("current run")
    _set_aside_if_stale(run, "aaaa", print)
    assert (run / "marker.txt").read_text() == "current run"
    _set_aside_if_stale(run, "bbbb", print)
    assert (tmp_path / "runs/sports/.stale/cgclip-aaaa/marker.txt").read_text() == "current run"
    assert (tmp_path / "runs/sports/cgclip.key").read_text().strip() == "bbbb"
