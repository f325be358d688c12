"""Bad input from the real world: every kind gets one line naming the file (and line) and leaves user files alone
(issue 13). Built here: non-finite boxes, Latin-1 text, folders where files belong, files where folders belong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cgclip.cli import main
from cgclip.errors import DataError
from fixtures_mot import write_mot_world


def _gt(root: Path) -> Path:
    return root / "train" / sorted(p.name for p in (root / "train").iterdir() if p.is_dir())[0] / "gt" / "gt.txt"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308"])
def test_non_finite_box_in_gt_names_file_and_line(tmp_path, value):
    from cgclip.data.mot import read_gt

    root = write_mot_world(tmp_path / "world")
    gt = _gt(root)
    rows = gt.read_text().splitlines()
    gt.write_text("\n".join(rows + [f"1, 77, 4, 12, {value}, 40, 1, 1, 1"]) + "\n")
    with pytest.raises(DataError) as err:
        read_gt(gt)
    assert str(err.value).startswith(f"{gt}:{len(rows) + 1}: column 'width'") and "finite" in str(err.value)


def _latin1(path: Path, text: str) -> None:
    path.write_bytes(text.encode("latin-1"))


def test_latin1_identity_table_is_one_line_with_the_line_number(tmp_path):
    from cgclip.data.identity_table import read_identity_table

    table = tmp_path / "identities.csv"
    _latin1(table, "identity_id,split\nath_a,train\nJosé,train\n")
    with pytest.raises(DataError, match=r"identities.csv:3: byte 0xe9 is not UTF-8.*CSV UTF-8"):
        read_identity_table(table)


def test_bom_utf8_is_accepted(tmp_path):
    from cgclip.data.identity_table import read_identity_table

    table = tmp_path / "identities.csv"
    table.write_bytes("identity_id,split\nJosé,train\n".encode("utf-8-sig"))
    assert [r.identity_id for r in read_identity_table(table)] == ["José"]


def test_latin1_gt_and_caption_store(tmp_path):
    from cgclip.captions.store import CaptionStore
    from cgclip.data.mot import read_gt

    root = write_mot_world(tmp_path / "world")
    gt = _gt(root)
    _latin1(gt, gt.read_text() + "# commentaire: caméra\n")
    with pytest.raises(DataError, match=r"gt.txt:\d+: byte 0xe9 is not UTF-8"):
        read_gt(gt)
    store = tmp_path / "caps.jsonl"
    _latin1(store, '{"identity": "A", "text": "un homme en chemise rouge, caf\xe9", "source": "mllm"}\n')
    with pytest.raises(DataError, match=r"caps.jsonl:1: byte 0xe9 is not UTF-8"):
        CaptionStore(store)


def test_build_mot_cli_bad_gt_is_one_line_and_writes_nothing(tmp_path, capsys):
    root = write_mot_world(tmp_path / "world")
    gt = _gt(root)
    gt.write_text(gt.read_text() + "1, 77, nan, 12, 16, 40, 1, 1, 1\n")
    out = tmp_path / "out"
    args = [
        "build-mot",
        "--mot",
        str(root),
        "--out",
        str(out),
        "--identities",
        str(root / "identities.csv"),
        "--mapping",
        str(root / "track_mapping.csv"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gt.txt:" in err and "column 'left'" in err
    assert not (out / "manifest.json").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_unreadable_table_is_one_line(tmp_path):
    from cgclip.data.identity_table import read_identity_table

    table = tmp_path / "identities.csv"
    table.write_text("identity_id,split\nA,train\n")
    table.chmod(0)
    try:
        with pytest.raises(DataError, match="permission denied"):
            read_identity_table(table)
    finally:
        table.chmod(0o600)


# --- outputs: every command that writes checks where it writes before any work, and never replaces a user file ---


def _user_files(tmp_path: Path) -> dict[str, bytes]:
    """A user's file and a user's folder (with one file) to aim outputs at; returns what they hold."""
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.csv").write_text("a,b\n1,2\n")
    return {p: (tmp_path / p).read_bytes() for p in ("notes.txt", "mine/data.csv")}


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "caps.jsonl"
    store.write_text('{"identity": "A", "text": "a man in a red shirt", "source": "annotation"}\n')
    return store


OUTPUT_CASES = {
    "from-annotations under a file": (
        ["caption", "from-annotations", "{t}/missing", "--out", "{t}/notes.txt/c.jsonl"],
        "is a file, so nothing can be written under it",
    ),
    "from-annotations into a folder": (
        ["caption", "from-annotations", "{t}/missing", "--out", "{t}/mine"],
        "names a folder",
    ),
    "from-annotations over a foreign file": (
        ["caption", "from-annotations", "{t}/missing", "--out", "{t}/notes.txt"],
        "not a caption store",
    ),
    "caption report over a foreign file": (
        ["caption", "report", "--captions", "{store}", "--out", "{t}/notes.txt"],
        "cgclip did not write",
    ),
    "caption report under a file": (
        ["caption", "report", "--captions", "{store}", "--out", "{t}/notes.txt/r.json"],
        "is a file",
    ),
    "search over a foreign file": (
        ["search", "--gallery", "{t}/none", "--query", "0", "--out", "{t}/notes.txt"],
        "cgclip did not write",
    ),
    "search grid into a folder": (
        ["search", "--gallery", "{t}/none", "--query", "0", "--grid", "{t}/mine"],
        "names a folder",
    ),
    "synth under a file": (["synth", "sports", "--size", "tiny", "--out", "{t}/notes.txt/world"], "is a file"),
    "pretrain-clip onto a file": (["pretrain-clip", "--out", "{t}/notes.txt", "--steps", "1"], "names a file"),
    "pretrain-clip into a foreign folder": (
        ["pretrain-clip", "--out", "{t}/mine", "--steps", "1"],
        "cgclip did not write",
    ),
    "import-clip onto a file": (["import-clip", "{t}/notes.txt", "--out", "{t}/notes.txt"], "names a file"),
    "demo onto a file": (["demo", "--quick", "--out", "{t}/notes.txt"], "names a file"),
    "demo into a foreign folder": (["demo", "--quick", "--out", "{t}/mine"], "cgclip did not write"),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_outputs_are_checked_before_work_and_user_files_survive(tmp_path, capsys, case):
    before = _user_files(tmp_path)
    args, message = OUTPUT_CASES[case]
    store = _store(tmp_path)
    argv = [a.format(t=tmp_path, store=store) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert {p: (tmp_path / p).read_bytes() for p in before} == before


def test_demo_folder_is_recognised_on_rerun(tmp_path):
    from cgclip.demo.pipeline import DEMO_MARKER, _is_demo_dir

    out = tmp_path / "demo"
    out.mkdir()
    (out / "results.md").write_text("x")
    assert not _is_demo_dir(out)
    (out / DEMO_MARKER).touch()
    assert _is_demo_dir(out)


def test_config_file_that_is_not_a_mapping_is_one_line(tmp_path):
    from cgclip.config import load_config
    from cgclip.errors import ConfigError

    path = tmp_path / "list.yaml"
    path.write_text("- model\n- train\n")
    with pytest.raises(ConfigError, match=r"list.yaml: expected sections .* got a YAML list"):
        load_config(yaml_path=path)


def test_clip_folder_without_config_is_refused_before_work(tmp_path):
    from cgclip.errors import CheckpointError
    from cgclip.train.modeling import resolve_clip_path

    (tmp_path / "clip").mkdir()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        resolve_clip_path(str(tmp_path / "clip"))


def test_config_that_does_not_match_the_weights_is_one_line_without_a_load_report(tmp_path, capfd):
    import json

    from cgclip.clip.files import load_clip_model
    from cgclip.clip.random_clip import save_random_clip
    from cgclip.errors import CheckpointError

    path = save_random_clip(tmp_path / "clip", size="tiny-vit")
    config = json.loads((path / "config.json").read_text())
    config["vision_config"]["intermediate_size"] = 512
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as err:
        load_clip_model(path)
    assert (
        "weights do not match config.json" in str(err.value)
        and "checkpoint [" in str(err.value)
        and "config.json [" in str(err.value)
    )
    printed = capfd.readouterr()
    assert "LOAD REPORT" not in printed.err + printed.out and "MISMATCH" not in printed.err + printed.out
