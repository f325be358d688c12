"""Frame sampling within a tracklet and the P×K identity batch sampler.

Frame samplers return positions into a tracklet of ``n`` frames, always in temporal order:

* :func:`rrs_indices` — restricted random sampling (training): the tracklet is split into ``seq_len`` near-equal
  consecutive chunks and one random frame is drawn from each chunk.
* :func:`rrs_first_indices` — the first frame of each RRS chunk (deterministic; the usual RRS test sampling).
* :func:`evenly_spaced_indices` — ``seq_len`` frames evenly spaced from the first to the last frame.
* :func:`dense_clips` — every frame, cut into consecutive non-overlapping clips of ``seq_len`` (dense testing;
  features of the clips are averaged by the caller).

When a tracklet has fewer frames than ``seq_len`` the chunk-based samplers repeat frames in order
(position ``i`` → frame ``i * n // seq_len``), so every clip still has exactly ``seq_len`` frames.

:class:`PKSampler` forms batches of P identities × K tracklets, consistently split across distributed ranks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from cgclip.errors import ConfigError


def _check(n: int, seq_len: int) -> None:
    if n < 1:
        raise ValueError(f"a tracklet needs at least one frame (got n={n})")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1 (got {seq_len})")


def _repeat_in_order(n: int, seq_len: int) -> list[int]:
    return [i * n // seq_len for i in range(seq_len)]


def _chunks(n: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and sizes of ``seq_len`` near-equal consecutive chunks of ``n >= seq_len`` frames."""
    sizes = np.full(seq_len, n // seq_len, dtype=np.int64)
    sizes[: n % seq_len] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return starts, sizes


def rrs_indices(n: int, seq_len: int, rng: np.random.Generator) -> list[int]:
    """Restricted random sampling: one random frame from each of ``seq_len`` near-equal chunks of ``n`` frames."""
    _check(n, seq_len)
    if n < seq_len:
        return _repeat_in_order(n, seq_len)
    starts, sizes = _chunks(n, seq_len)
    offsets = (rng.random(seq_len) * sizes).astype(np.int64)
    return [int(i) for i in starts + np.minimum(offsets, sizes - 1)]


def rrs_first_indices(n: int, seq_len: int) -> list[int]:
    """The first frame of each of the ``seq_len`` RRS chunks of ``n`` frames (deterministic)."""
    _check(n, seq_len)
    if n < seq_len:
        return _repeat_in_order(n, seq_len)
    starts, _ = _chunks(n, seq_len)
    return [int(i) for i in starts]


def evenly_spaced_indices(n: int, seq_len: int) -> list[int]:
    """``seq_len`` positions evenly spaced from the first to the last of ``n`` frames (rounded).

    Frames repeat in order when ``n < seq_len``.
    """
    _check(n, seq_len)
    if n < seq_len:
        return _repeat_in_order(n, seq_len)
    if seq_len == 1:
        return [0]
    return [int(round(x)) for x in np.linspace(0, n - 1, seq_len)]


def dense_clips(n: int, seq_len: int) -> list[list[int]]:
    """All frames of a tracklet as consecutive, non-overlapping clips of ``seq_len`` positions.

    This is TF-CLIP's dense test sampling: clips ``[0..T-1], [T..2T-1], ...``; the last clip, if shorter than ``T``,
    is padded by cycling through its own frames (e.g. n=11, T=8: ``[0..7]`` and ``[8, 9, 10, 8, 9, 10, 8, 9]``).
    A tracklet shorter than ``T`` gives one clip cycling through all its frames.
    """
    _check(n, seq_len)
    clips = []
    for start in range(0, n, seq_len):
        own = list(range(start, min(start + seq_len, n)))
        clips.append([own[i % len(own)] for i in range(seq_len)])
    return clips


class PKSampler(Sampler[int]):
    """Identity-balanced sampler: every global batch holds ``p`` identities × ``k`` tracklets, as flat dataset indices.

    Args:
        pids: the (train) person id of every dataset item, indexed like the dataset.
        p: identities per global batch (summed over ranks).
        k: tracklets per identity; identities with fewer than ``k`` tracklets are sampled with replacement.
        seed: base seed; the order of epoch ``e`` depends only on ``(seed, e)`` (see :meth:`set_epoch`), so every rank
            builds the same global batches and a resumed run replays the same epochs.
        rank, world_size: distributed position. Rank ``r`` receives identities ``r*p/ws .. (r+1)*p/ws - 1`` of every
            global batch (``p // world_size`` identities × ``k`` tracklets per rank batch), so ranks are disjoint and
            together form the global batch. ``p`` must be divisible by ``world_size``.
        drop_last: ``epoch_mode="identity"`` only: drop the identities left over after the last full batch (default);
            when False, the last batch is completed with identities from the start of the epoch's permutation.
        epoch_mode: what one epoch covers.
            ``"identity"`` (default): a random permutation of all identities, each appearing about once per epoch
            (exactly once with ``drop_last=False`` except the padding), so an epoch has ``#ids // p`` global batches.
            ``"tracklet"``: torchreid's ``RandomIdentitySampler``: each identity's tracklets are shuffled and cut into
            groups of ``k`` (padded with replacement if it has fewer than ``k``); batches draw ``p`` distinct identities
            with groups left until fewer than ``p`` remain, so each tracklet is seen about once per epoch.
        cameras: the camera id of every dataset item; needed by the two options below.
        spread_cameras: spread each identity's ``k`` tracklets over its cameras (identity mode: round robin over
            them; tracklet mode: each camera's tracklets dealt across the identity's groups in turn), so the triplet
            loss's positives come from different cameras (scenes) whenever the identity has them.
        same_camera_ids: ``epoch_mode="tracklet"`` only: up to this many of each batch's ``p`` identities are drawn
            from one camera (a random camera among those of the identities left), the rest at random — negatives
            that share the scene (for sports and dance: the same uniform and background), the hardest there are.

    Use it with ``DataLoader(dataset, batch_size=sampler.batch_size, sampler=sampler, drop_last=True)``.
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        epoch_mode: str = "identity",
        cameras: Sequence[int] | None = None,
        spread_cameras: bool = False,
        same_camera_ids: int = 0,
    ) -> None:
        if p < 1 or k < 1:
            raise ConfigError(f"P×K batch needs p >= 1 and k >= 1 (got p={p}, k={k})")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in 0..world_size-1 (world_size={world_size})")
        if p % world_size:
            raise ConfigError(
                f"p={p} identities per batch cannot be split over {world_size} ranks; use a multiple of {world_size}"
            )
        if epoch_mode not in ("identity", "tracklet"):
            raise ConfigError(f"epoch_mode must be 'identity' or 'tracklet' (got {epoch_mode!r})")
        index: dict[int, list[int]] = {}
        for i, pid in enumerate(pids):
            index.setdefault(int(pid), []).append(i)
        if len(index) < p:
            raise ConfigError(f"the data has {len(index)} identities but a batch needs p={p}; lower p")
        if (spread_cameras or same_camera_ids) and (cameras is None or len(cameras) != len(pids)):
            raise ConfigError(
                "spread_cameras / same_camera_ids need the camera id of every item "
                f"({len(pids)}), got {'none' if cameras is None else len(cameras)}"
            )
        if same_camera_ids and epoch_mode != "tracklet":
            raise ConfigError("same_camera_ids works with epoch_mode 'tracklet' only")
        self.cameras = np.asarray(cameras, dtype=np.int64) if spread_cameras or same_camera_ids else None
        self.spread = bool(spread_cameras)
        self.same_camera_ids = int(same_camera_ids)
        self.ids = sorted(index)
        self.index = {pid: np.asarray(v, dtype=np.int64) for pid, v in index.items()}
        self._cameras_of = (
            {}
            if self.cameras is None
            else {pid: frozenset(np.unique(self.cameras[idx]).tolist()) for pid, idx in self.index.items()}
        )
        self.p, self.k, self.seed = p, k, seed
        self.rank, self.world_size = rank, world_size
        self.drop_last, self.epoch_mode = drop_last, epoch_mode
        self.epoch = 0
        self._cache: tuple[int, np.ndarray] | None = None

    @property
    def batch_size(self) -> int:
        """Indices per rank batch: ``p // world_size * k``."""
        return self.p // self.world_size * self.k

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        self.epoch = int(epoch)

    def _camera_rank(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each item's camera position in a random order of the cameras among ``idx``."""
        cams = self.cameras[idx]
        position = {int(c): n for n, c in enumerate(rng.permutation(np.unique(cams)))}
        return np.array([position[int(c)] for c in cams], dtype=np.int64)

    def _pick(self, pid: int, rng: np.random.Generator) -> np.ndarray:
        idx = self.index[pid]
        if not self.spread:
            return rng.choice(idx, self.k, replace=len(idx) < self.k)
        idx = rng.permutation(idx)  # round robin over the cameras (in random order), cycled to k items
        cam = self._camera_rank(idx, rng)
        rank_in_cam = np.zeros(len(idx), dtype=np.int64)
        for c in np.unique(cam):
            rank_in_cam[cam == c] = np.arange(int((cam == c).sum()))
        return np.resize(idx[np.lexsort((cam, rank_in_cam))], self.k)

    def _groups(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An identity's tracklets shuffled and cut into groups of ``k`` (the remainder is dropped); with cameras,
        each camera's tracklets are dealt across the groups in turn, which spreads every camera over as many groups
        as possible."""
        idx = rng.permutation(idx)
        n = len(idx) // self.k
        if not self.spread:
            return idx[: n * self.k].reshape(-1, self.k)
        by_camera = idx[np.argsort(self._camera_rank(idx, rng), kind="stable")]
        return np.stack([by_camera[g::n][: self.k] for g in range(n)])

    def _identity_batches(self, rng: np.random.Generator) -> np.ndarray:
        perm = [self.ids[i] for i in rng.permutation(len(self.ids))]
        rem = len(perm) % self.p
        if rem:
            perm = perm[: len(perm) - rem] if self.drop_last else perm + perm[: self.p - rem]
        groups = [self._pick(pid, rng) for pid in perm]
        return np.asarray(groups, dtype=np.int64).reshape(-1, self.p, self.k)

    def _tracklet_batches(self, rng: np.random.Generator) -> np.ndarray:
        groups: dict[int, list[np.ndarray]] = {}
        for pid in self.ids:
            idx = self.index[pid]
            if len(idx) < self.k:
                idx = rng.choice(idx, self.k, replace=True)
            groups[pid] = list(self._groups(idx, rng))
        available = [pid for pid in self.ids if groups[pid]]
        batches = []
        while len(available) >= self.p:
            chosen = self._choose(available, rng)
            batches.append([groups[pid].pop(0) for pid in chosen])
            available = [pid for pid in available if groups[pid]]
        return np.asarray(batches, dtype=np.int64).reshape(-1, self.p, self.k)

    def _choose(self, available: list[int], rng: np.random.Generator) -> list[int]:
        """``p`` distinct identities of ``available``: at random, or up to ``same_camera_ids`` from one camera."""
        if not self.same_camera_ids:
            return [available[i] for i in rng.choice(len(available), self.p, replace=False)]
        anchor = rng.choice(sorted(set().union(*(self._cameras_of[pid] for pid in available))))
        mates = [pid for pid in available if anchor in self._cameras_of[pid]]
        chosen = [mates[i] for i in rng.permutation(len(mates))[: min(self.same_camera_ids, self.p)]]
        taken = set(chosen)
        rest = [pid for pid in available if pid not in taken]
        return chosen + [rest[i] for i in rng.choice(len(rest), self.p - len(chosen), replace=False)]

    def global_batches(self, epoch: int | None = None) -> np.ndarray:
        """The global batches of ``epoch`` (default: the current one) as an int array ``[num_batches, p, k]``."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is None or self._cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            if self.epoch_mode == "identity":
                batches = self._identity_batches(rng)
            else:
                batches = self._tracklet_batches(rng)
            self._cache = (epoch, batches)
        return self._cache[1]

    def __iter__(self) -> Iterator[int]:
        share = self.p // self.world_size
        lo = self.rank * share
        for batch in self.global_batches():
            for i in batch[lo : lo + share].reshape(-1):
                yield int(i)

    def __len__(self) -> int:
        """Indices this rank yields in the current epoch."""
        return len(self.global_batches()) * self.batch_size
