"""Frame samplers and the distributed P×K identity sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from cgclip.data.sampling import PKSampler, dense_clips, evenly_spaced_indices, rrs_first_indices, rrs_indices
from cgclip.errors import ConfigError


def test_rrs_one_frame_per_chunk():
    rng = np.random.default_rng(0)
    # n=10, T=4: chunks [0,1,2] [3,4,5] [6,7] [8,9]
    chunks = [range(0, 3), range(3, 6), range(6, 8), range(8, 10)]
    seen = [set() for _ in chunks]
    for _ in range(200):
        idx = rrs_indices(10, 4, rng)
        assert len(idx) == 4
        for s, c, i in zip(seen, chunks, idx):
            assert i in c
            s.add(i)
    assert [sorted(s) for s in seen] == [list(c) for c in chunks]  # every frame of every chunk gets drawn


def test_rrs_deterministic_given_generator():
    a = rrs_indices(57, 8, np.random.default_rng(5))
    b = rrs_indices(57, 8, np.random.default_rng(5))
    assert a == b and a == sorted(a)


def test_short_tracklets_repeat_in_order():
    assert rrs_indices(3, 8, np.random.default_rng(0)) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert rrs_first_indices(3, 8) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert evenly_spaced_indices(1, 4) == [0, 0, 0, 0]


def test_rrs_first_and_evenly():
    assert rrs_first_indices(10, 4) == [0, 3, 6, 8]
    assert rrs_first_indices(8, 8) == list(range(8))
    assert evenly_spaced_indices(10, 4) == [0, 3, 6, 9]
    assert evenly_spaced_indices(10, 1) == [0]


def test_dense_clips():
    assert dense_clips(16, 8) == [list(range(8)), list(range(8, 16))]
    assert dense_clips(11, 8) == [list(range(8)), [8, 9, 10, 8, 9, 10, 8, 9]]
    assert dense_clips(3, 4) == [[0, 1, 2, 0]]
    assert sorted({i for c in dense_clips(23, 4) for i in c}) == list(range(23))


def test_invalid_lengths():
    with pytest.raises(ValueError):
        rrs_first_indices(0, 4)
    with pytest.raises(ValueError):
        dense_clips(4, 0)


def _pids():
    # 10 identities with 1..5 tracklets each (ids 100.. to make sure they are not positions)
    return [100 + pid for pid in range(10) for _ in range(pid % 5 + 1)]


def _batches(sampler):
    items = list(sampler)
    assert len(items) == len(sampler)
    bs = sampler.batch_size
    return [items[i : i + bs] for i in range(0, len(items), bs)]


def test_single_rank_batch_composition():
    pids = _pids()
    s = PKSampler(pids, p=4, k=3, seed=1)
    batches = _batches(s)
    assert len(batches) == 2  # 10 identities // 4, leftovers dropped
    seen = set()
    for b in batches:
        counts = Counter(pids[i] for i in b)
        assert len(counts) == 4 and set(counts.values()) == {3}
        seen |= set(counts)
        # identities with >= K tracklets are sampled without replacement
        for pid in counts:
            idx = [i for i in b if pids[i] == pid]
            if pids.count(pid) >= 3:
                assert len(set(idx)) == 3
    assert len(seen) == 8  # each identity at most once per epoch


def test_no_drop_last_covers_every_identity():
    pids = _pids()
    s = PKSampler(pids, p=4, k=2, seed=0, drop_last=False)
    batches = _batches(s)
    assert len(batches) == 3
    assert {pids[i] for b in batches for i in b} == set(pids)
    assert all(len({pids[i] for i in b}) == 4 for b in batches)


@pytest.mark.parametrize("mode", ["identity", "tracklet"])
def test_ranks_disjoint_and_union_is_global_batch(mode):
    pids = _pids()
    ws = 2
    samplers = [PKSampler(pids, p=4, k=2, seed=7, rank=r, world_size=ws, epoch_mode=mode) for r in range(ws)]
    for s in samplers:
        s.set_epoch(3)
    per_rank = [_batches(s) for s in samplers]
    assert len(per_rank[0]) == len(per_rank[1]) > 0
    glob = samplers[0].global_batches()
    for b, (b0, b1) in enumerate(zip(*per_rank)):
        ids0, ids1 = {pids[i] for i in b0}, {pids[i] for i in b1}
        assert len(ids0) == len(ids1) == 2 and not ids0 & ids1
        assert all(set(Counter(pids[i] for i in x).values()) == {2} for x in (b0, b1))
        assert b0 + b1 == glob[b].reshape(-1).tolist()


def test_deterministic_and_epoch_dependent():
    pids = _pids()
    a, b = PKSampler(pids, 4, 2, seed=3), PKSampler(pids, 4, 2, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(PKSampler(pids, 4, 2, seed=4)) != first


def test_tracklet_mode_covers_tracklets():
    pids = [pid for pid in range(6) for _ in range(4)]  # 6 ids × 4 tracklets
    s = PKSampler(pids, p=2, k=2, seed=0, epoch_mode="tracklet")
    items = list(s)
    assert len(items) == len(s) == 24
    assert sorted(items) == list(range(24))  # every tracklet exactly once
    for b in _batches(s):
        assert sorted(Counter(pids[i] for i in b).values()) == [2, 2]


def test_config_errors():
    pids = _pids()
    with pytest.raises(ConfigError, match="cannot be split over 3 ranks"):
        PKSampler(pids, p=4, k=2, world_size=3)
    with pytest.raises(ConfigError, match="10 identities but a batch needs p=12"):
        PKSampler(pids, p=12, k=2)
    with pytest.raises(ConfigError, match="rank 2"):
        PKSampler(pids, p=4, k=2, rank=2, world_size=2)
    with pytest.raises(ConfigError):
        PKSampler(pids, p=4, k=0)


@pytest.mark.parametrize("mode", ["identity", "tracklet"])
def test_spread_cameras_puts_positives_in_different_cameras(mode):
    """With cameras, an identity's groups of k reach its second camera as often as its tracklets allow; without
    cameras the order is unchanged."""
    rng = np.random.default_rng(0)
    pids, cams = [], []
    for pid in range(12):  # 9 tracklets in a main camera, 3 in a second one (as in the synthetic worlds)
        pids += [pid] * 12
        cams += [10 * pid] * 9 + [10 * pid + 1] * 3
    order = rng.permutation(len(pids))
    pids, cams = [pids[i] for i in order], [cams[i] for i in order]
    spread = PKSampler(pids, 4, 4, seed=3, epoch_mode=mode, cameras=cams, spread_cameras=True)
    plain = PKSampler(pids, 4, 4, seed=3, epoch_mode=mode)
    covered = [len({cams[i] for i in group}) for batch in spread.global_batches(0) for group in batch]
    plain_cov = [len({cams[i] for i in group}) for batch in plain.global_batches(0) for group in batch]
    assert all(len({pids[i] for i in group}) == 1 for batch in spread.global_batches(0) for group in batch)
    # identity mode: every group reaches both cameras; tracklet mode: 3 groups of 4 per identity and 3
    # second-camera tracklets, dealt one per group
    assert min(covered) == 2 and np.mean(plain_cov) < 2
    if mode == "tracklet":
        flat = spread.global_batches(0).reshape(-1).tolist()
        assert len(flat) == len(set(flat)) >= len(pids) - 4 * 4  # each tracklet at most once; leftovers < p groups
    assert np.array_equal(plain.global_batches(0), PKSampler(pids, 4, 4, seed=3, epoch_mode=mode).global_batches(0))
    assert np.array_equal(
        plain.global_batches(0), PKSampler(pids, 4, 4, seed=3, epoch_mode=mode, cameras=cams).global_batches(0)
    )  # cameras alone: no-op
    with pytest.raises(ConfigError):
        PKSampler(pids, 4, 4, cameras=cams[:-1], spread_cameras=True)


def test_same_camera_identities_share_a_scene():
    """same_camera_ids=n: n identities of a batch share one camera while the camera has enough identities left."""
    pids = [pid for pid in range(24) for _ in range(8)]
    cams = [pid // 6 for pid in range(24) for _ in range(8)]  # 4 sequences of 6 identities
    sampler = PKSampler(pids, 8, 4, seed=1, epoch_mode="tracklet", cameras=cams, same_camera_ids=4)
    batches = sampler.global_batches(0)
    assert len(batches) == len(PKSampler(pids, 8, 4, seed=1, epoch_mode="tracklet").global_batches(0))
    shared = [max(np.bincount([cams[g[0]] for g in batch])) for batch in batches]
    assert shared[0] >= 4 and sum(n >= 4 for n in shared) >= len(shared) - 2
    assert all(len({pids[g[0]] for g in batch}) == 8 for batch in batches)
    rand = [
        max(np.bincount([cams[g[0]] for g in batch]))
        for batch in PKSampler(pids, 8, 4, seed=1, epoch_mode="tracklet").global_batches(0)
    ]
    assert np.mean(shared) > np.mean(rand)
    with pytest.raises(ConfigError):
        PKSampler(pids, 8, 4, cameras=cams, same_camera_ids=4)  # identity mode
