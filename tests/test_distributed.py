"""Distributed training: a 2-process gloo DDP run on CPU completes, only rank 0 writes, and every rank's batches keep
the P×K composition (p/world_size identities × k tracklets per rank, ranks disjoint, together one global batch)."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures_train import tiny_captions, tiny_dataset, write_tiny_clip  # noqa: E402

P, K, WORLD = 4, 2, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(
    rank: int,
    world_size: int,
    port: int,
    clip: str,
    dataset,
    captions,
    out: str,
    record_dir: str,
    model: str = "cgclip",
) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        CGCLIP_PROGRESS="0",
    )
    torch.set_num_threads(1)
    import cgclip.train.setup as setup
    import cgclip.train.trainer as trainer
    from cgclip.config import load_config

    batches: list[list[list[int]]] = []
    collate = setup.collate_clips

    def recording_collate(items):
        batches.append([[int(it["pid"]), int(it["index"])] for it in items])
        return collate(items)

    setup.collate_clips = recording_collate  # the train loader's collate function, looked up at loader creation
    cfg = load_config(
        "tiny",
        [
            f"model.clip_path={clip}",
            f"model.name={model}",
            "data.image_size=[32,16]",
            "data.seq_len=4",
            f"data.p={P}",
            f"data.k={K}",
            "train.num_workers=0",
            "train.epochs=2",
            "train.precision=fp32",
            "data.val_identities=3",
            "train.eval_every=1",
        ],
    )
    result = trainer.train(cfg, out, dataset=dataset, captions=captions)
    Path(record_dir, f"rank{rank}.json").write_text(json.dumps({"batches": batches, "epochs": result.epochs}))


def test_two_process_gloo_ddp_run(tmp_path):
    clip = write_tiny_clip(tmp_path / "clip")
    dataset = tiny_dataset(tmp_path / "data")
    out = tmp_path / "run"
    records = tmp_path / "records"
    records.mkdir()
    mp.spawn(
        _worker,
        args=(WORLD, _free_port(), str(clip), dataset, tiny_captions(dataset), str(out), str(records)),
        nprocs=WORLD,
        join=True,
    )

    ranks = [json.loads((records / f"rank{r}.json").read_text()) for r in range(WORLD)]
    b0, b1 = ranks[0]["batches"], ranks[1]["batches"]
    assert len(b0) == len(b1) > 0
    for x, y in zip(b0, b1):
        for batch in (x, y):
            counts = Counter(pid for pid, _ in batch)
            assert len(batch) == P // WORLD * K
            assert len(counts) == P // WORLD and set(counts.values()) == {K}
        assert not ({pid for pid, _ in x} & {pid for pid, _ in y})  # ranks hold different identities
        assert len({pid for pid, _ in x + y}) == P  # together: one P×K global batch

    # the run completed and only rank 0 wrote it (one metrics line per epoch, global throughput)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["world_size"] == WORLD
    assert sum(r["tracklets"] for r in rows) == len(b0) * P * K  # global count: every rank's batches
    assert all("val" in r for r in rows)
    assert (out / "model.safetensors").is_file() and json.loads((out / "run.json").read_text())["world_size"] == WORLD
    side = json.loads((out / "checkpoints" / "last.json").read_text())
    assert len(side["state"]["rng"]) == WORLD  # every rank's random state is kept for resuming


@pytest.mark.parametrize("bad_p", [3])
def test_p_must_split_over_ranks(bad_p):
    from cgclip.data.sampling import PKSampler
    from cgclip.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot be split"):
        PKSampler(list(range(10)), bad_p, 2, rank=0, world_size=2)
