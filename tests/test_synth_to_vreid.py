"""The synthetic world goes through the same MOT→VReID builder and loader as real data."""

from pathlib import Path

from cgclip.cli import main
from cgclip.data import load_dataset


def test_synth_build_load(tmp_path: Path, capsys) -> None:
    for kind in ("sports", "dance"):
        world, ds_dir = tmp_path / kind, tmp_path / f"{kind}_ds"
        assert main(["synth", kind, "--out", str(world), "--seed", "3", "--size", "tiny"]) == 0
        assert main(["build-mot", "--mot", str(world), "--out", str(ds_dir), "--min-height", "16"]) == 0
        ds = load_dataset("vreid", ds_dir)
        assert ds.train and ds.query and ds.gallery
        train_ids = {t.identity for t in ds.train}
        val_ids = {t.identity for t in ds.query} | {t.identity for t in ds.gallery}
        assert not train_ids & val_ids
        # every val identity is seen in at least two sequences
        for ident in val_ids:
            seqs = {t.seqid for t in ds.query + ds.gallery if t.identity == ident}
            assert len(seqs) >= 2, ident
        # every query has a positive in another camera
        for q in ds.query:
            assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)
        assert ds.num_train_pids == len(train_ids)
        assert main(["info", str(ds_dir)]) == 0
        out = capsys.readouterr().out
        assert "query" in out and "gallery" in out
