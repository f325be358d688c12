"""Bad input from the real world: every kind gets one line naming the file (and line) and leaves user files alone
(issue 13). Built here: non-finite boxes, Latin-1 text, folders where files belong, files where folders belong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cgclip.cli import main
from cgclip.errors import DataError
from fixtures_mot import BUILD, write_mot_world


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
    args = ["build-mot", "--mot", str(root), "--out", str(out), "--identities", str(root / "identities.csv"),
            "--mapping", str(root / "track_mapping.csv")]
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
