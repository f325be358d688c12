"""One vocabulary on the command line: ``--out``, ``--dataset-kind``, ``--splits`` (dataset partitions, comma- or
space-separated), ``--device`` / ``--precision``; the old spellings still parse, with a one-line deprecation warning."""

from __future__ import annotations

import pytest

from cgclip.cli import build_parser


def _parse(argv: list[str]):
    return build_parser().parse_args(argv)


@pytest.mark.parametrize(
    "old, new, attr, value",
    [
        (
            ["evaluate", "--run", "r", "--output", "x.json"],
            ["evaluate", "--run", "r", "--out", "x.json"],
            "out",
            "x.json",
        ),
        (["info", "d", "--kind", "vreid"], ["info", "d", "--dataset-kind", "vreid"], "dataset_kind", "vreid"),
        (
            ["caption", "mllm", "--dataset", "d", "--out", "c.jsonl", "--kind", "mars"],
            ["caption", "mllm", "--dataset", "d", "--out", "c.jsonl", "--dataset-kind", "mars"],
            "dataset_kind",
            "mars",
        ),
        (
            ["train", "--out", "r", "--splits", "0-9"],
            ["train", "--out", "r", "--protocol-splits", "0-9"],
            "protocol_splits",
            "0-9",
        ),
        (
            ["build-mot", "--mot", "m", "--out", "o", "--splits", "a", "b"],
            ["build-mot", "--mot", "m", "--out", "o", "--mot-splits", "a", "b"],
            "mot_splits",
            ["a", "b"],
        ),
        (
            ["caption", "from-annotations", "t.csv", "--out", "c.jsonl", "--splits", "train,val"],
            ["caption", "from-annotations", "t.csv", "--out", "c.jsonl", "--identity-splits", "train", "val"],
            "identity_splits",
            ["train", "val"],
        ),
        (
            ["caption", "report", "--captions", "c.jsonl", "--splits", "all"],
            ["caption", "report", "--captions", "c.jsonl", "--identity-splits", "all"],
            "identity_splits",
            ["all"],
        ),
        (
            ["caption", "mllm", "--images", "i", "--out", "c.jsonl", "--dtype", "bfloat16"],
            ["caption", "mllm", "--images", "i", "--out", "c.jsonl", "--precision", "bf16"],
            "precision",
            "bf16",
        ),
    ],
)
def test_old_spellings_warn_and_mean_the_new(old, new, attr, value, capsys: pytest.CaptureFixture[str]) -> None:
    assert getattr(_parse(new), attr) == value
    assert capsys.readouterr().err == ""
    assert getattr(_parse(old), attr) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is deprecated" in err[0] and f"use --{attr.replace('_', '-')}" in err[0]


def test_old_spellings_are_hidden_from_help() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    assert "--output" not in sub["evaluate"].format_help() and "--kind" not in sub["info"].format_help()
    assert "--dataset-kind" in sub["info"].format_help()


@pytest.mark.parametrize("given", [["query,gallery"], ["query", "gallery"], ["query, gallery", "query"]])
def test_splits_are_comma_or_space_separated(given: list[str]) -> None:
    assert _parse(["extract", "--run", "r", "--out", "o", "--splits", *given]).splits == ["query", "gallery"]
    assert _parse(["caption", "mllm", "--images", "i", "--out", "c", "--splits", *given]).splits == ["query", "gallery"]


def test_defaults_and_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["caption", "attributes", "--images", "i", "--out", "c"])
    assert args.device == "auto" and args.splits == ["train"]  # attributes used to default to cpu
    args = _parse(["evaluate", "--run", "r"])
    assert args.device is None and args.precision is None  # the run's
    assert _parse(["pretrain-clip", "--out", "o", "--device", "cuda:1"]).device == "cuda:1"
    for argv in (
        ["extract", "--run", "r", "--out", "o", "--splits", "val"],
        ["evaluate", "--run", "r", "--device", "gpu"],
        ["train", "--out", "r", "--precision", "half-ish"],
    ):
        with pytest.raises(SystemExit) as stop:
            _parse(argv)
        assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "unknown 'val'; use train, query, gallery" in err and "unknown device 'gpu'" in err
    assert "unknown precision 'half-ish'" in err


def test_train_shortcuts_set_device_and_precision() -> None:
    from cgclip.cli.train import build_config

    cfg = build_config(_parse(["train", "--preset", "tiny", "--out", "r", "--device", "cpu", "--precision", "fp32"]))
    assert (cfg.train.device, cfg.train.precision) == ("cpu", "fp32")
