"""``cgclip info`` on a dataset built by ``cgclip build-mot``: the plain table, JSON output and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cgclip.cli import main
from fixtures_mot import BUILD, write_mot_world


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cgclip.data.vreid_builder import build_vreid

    root = write_mot_world(tmp_path_factory.mktemp("mot"))
    build_vreid(root, root / "ds", root / "identities.csv", root / "track_mapping.csv", **BUILD)
    return root / "ds"


def test_info_table(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(dataset)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"vreid dataset at {dataset.resolve()}"
    header = lines[1].split()
    assert header[:6] == ["split", "identities", "tracklets", "cameras", "sequences", "frames"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
    #             identities tracklets cameras sequences frames min mean max
    assert rows["train"] == ["4", "8", "2", "2", "24", "2", "3.0", "4"]
    assert rows["query"] == ["3", "4", "2", "2", "11", "2", "2.8", "4"]
    assert rows["gallery"] == ["5", "7", "3", "3", "19", "2", "2.7", "4"]
    text = "\n".join(lines)
    assert "cameras in all splits: 5; train classes: 4" in text and "query_gallery_rule: Val tracklets" in text


def test_info_json_and_kind(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(dataset), "--kind", "vreid", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["kind"] == "vreid" and stats["query"]["tracklets"] == 4
    assert stats["gallery"]["frames_per_tracklet"] == {"min": 2, "mean": 2.71, "max": 4}
    assert stats["info"]["parameters"]["max_len"] == 4


def test_info_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path)]) == 2
    assert "cannot tell the dataset format" in capsys.readouterr().err
    assert main(["info", str(tmp_path), "--kind", "vreid"]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_unexpected_error_is_one_line_with_the_traceback_saved(tmp_path, monkeypatch, capsys):
    import cgclip.cli.info as info_cmd

    def broken(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(info_cmd, "run", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert main(["info", str(tmp_path)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ZeroDivisionError: division by zero (" in err and "--debug" in err
    saved = list(tmp_path.glob("cgclip-error-*.txt"))
    assert len(saved) == 1 and "Traceback" in saved[0].read_text() and "second line" in saved[0].read_text()
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "info", str(tmp_path)])
