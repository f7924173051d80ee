from typing import List, Optional
from unittest import mock

import numpy as np
import pytest
import torch
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import DataLoader

from lpt_mmpretrain.datasets.samplers import (DualClassBalancedSampler,
                                              DualStreamBatchSampler)
from lpt_mmpretrain.datasets.samplers import dual_class_balanced_sampler as mod
from lpt_mmpretrain.structures import STREAM_CB, STREAM_IB


class FakeLTDataset:
    """Tiny long-tailed data set: only labels, accepts (index, stream)."""

    accepts_stream_index = True

    def __init__(self,
                 counts: List[int],
                 seed: int = 0,
                 classes: Optional[tuple] = None) -> None:
        rng = np.random.default_rng(seed)
        self.labels = rng.permutation(
            np.repeat(np.arange(len(counts)), counts))
        self.metainfo = dict(
            classes=classes or tuple(f'c{i}' for i in range(len(counts))))

    def __len__(self) -> int:
        return len(self.labels)

    def get_gt_labels(self) -> np.ndarray:
        return self.labels

    def __getitem__(self, item):
        index, stream = item
        return dict(index=index, stream=stream, label=int(self.labels[index]))


COUNTS = [60, 45, 33, 25, 18, 14, 10, 8, 6, 5, 4, 3, 3, 2, 2, 1]


def make_sampler(dataset, batch_size, rank=0, world_size=1, **kwargs):
    with mock.patch.object(
            mod, 'get_dist_info', return_value=(rank, world_size)):
        return DualClassBalancedSampler(dataset, batch_size, **kwargs)


def split(sampler):
    """Per-iteration (cb indices, ib indices) lists of one epoch."""
    items = list(sampler)
    b = sampler.batch_size
    cb, ib = [], []
    for start in range(0, len(items), 2 * b):
        chunk = items[start:start + 2 * b]
        assert [s for _, s in chunk] == [STREAM_CB] * b + [STREAM_IB] * b
        assert all(type(i) is int for i, _ in chunk)
        cb.append([i for i, _ in chunk[:b]])
        ib.append([i for i, _ in chunk[b:]])
    return cb, ib


def test_length_and_layout():
    ds = FakeLTDataset(COUNTS)
    sampler = make_sampler(ds, batch_size=8, num_samples_cls=4, seed=0)
    n = len(ds)
    assert sampler.iters_per_epoch == n // 8
    assert len(sampler) == (n // 8) * 2 * 8
    cb, ib = split(sampler)
    assert len(cb) == len(ib) == n // 8
    assert sum(map(len, cb)) + sum(map(len, ib)) == len(sampler)


def test_class_balanced_stream():
    ds = FakeLTDataset(COUNTS)
    k = 4
    num_classes = len(COUNTS)
    sampler = make_sampler(ds, batch_size=8, num_samples_cls=k, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        cb, _ = split(sampler)
        flat = np.concatenate(cb)
        groups = ds.labels[flat].reshape(-1, k)
        # each draw: k consecutive images of one class
        assert (groups == groups[:, :1]).all()
        draws = groups[:, 0]
        # classes come in shuffled cycles: every full cycle is a permutation
        # of all classes, the trailing partial cycle has no repeat
        full = len(draws) // num_classes
        assert full >= 2
        cycles = draws[:full * num_classes].reshape(full, num_classes)
        for cycle in cycles:
            assert sorted(cycle.tolist()) == list(range(num_classes))
        tail = draws[full * num_classes:]
        assert len(set(tail.tolist())) == len(tail)
        # reshuffled at each cycle end
        assert len({tuple(c) for c in cycles.tolist()}) > 1
        # each class's images cycle: no repeat before all are used
        for c in range(num_classes):
            seq = flat[ds.labels[flat] == c]
            images = np.flatnonzero(ds.labels == c)
            n_c = len(images)
            for start in range(0, len(seq), n_c):
                block = seq[start:start + n_c]
                assert len(set(block.tolist())) == len(block)
                assert set(block.tolist()) <= set(images.tolist())
            if len(seq) >= n_c:
                assert set(seq[:n_c].tolist()) == set(images.tolist())


def test_class_balanced_uniform_over_many_batches():
    """Class frequency of the cb half is uniform although the data set is
    long-tailed (chi-square over whole batches), unlike the ib half."""
    counts = [200, 100, 50, 25, 12, 6, 3, 2]
    ds = FakeLTDataset(counts)
    sampler = make_sampler(ds, batch_size=12, num_samples_cls=2, seed=0)
    cb_hist = np.zeros(len(counts))
    ib_hist = np.zeros(len(counts))
    for epoch in range(10):
        sampler.set_epoch(epoch)
        cb, ib = split(sampler)
        cb_hist += np.bincount(
            ds.labels[np.concatenate(cb)], minlength=len(counts))
        ib_hist += np.bincount(
            ds.labels[np.concatenate(ib)], minlength=len(counts))
    # every epoch: 198 draws = 24 full cycles + 6 -> counts differ by <= k
    assert cb_hist.max() - cb_hist.min() <= 2 * 10
    expected = cb_hist.sum() / len(counts)
    chi2 = ((cb_hist - expected)**2 / expected).sum()
    assert chi2 < 18.5  # 99th percentile of chi2(7)
    # the instance-balanced half follows the data distribution
    ib_expected = ib_hist.sum() * np.array(counts) / sum(counts)
    assert np.abs(ib_hist - ib_expected).max() <= 0.02 * ib_hist.sum()
    assert ((ib_hist - expected)**2 / expected).sum() > 1000


def test_instance_balanced_stream():
    ds = FakeLTDataset(COUNTS)
    sampler = make_sampler(ds, batch_size=8, num_samples_cls=4, seed=1)
    _, ib = split(sampler)
    flat = np.concatenate(ib)
    total = sampler.iters_per_epoch * 8
    assert len(flat) == total
    assert len(set(flat.tolist())) == total  # no repeat within an epoch
    dropped = len(ds) - total
    per_class = np.bincount(ds.labels[flat], minlength=len(COUNTS))
    assert (per_class <= np.array(COUNTS)).all()
    assert (per_class >= np.array(COUNTS) - dropped).all()


@pytest.mark.parametrize('world_size', [2, 4])
def test_ranks_partition_the_single_rank_batches(world_size):
    ds = FakeLTDataset(COUNTS)
    b = 4
    single = make_sampler(ds, b * world_size, num_samples_cls=2, seed=7)
    single.set_epoch(2)
    ref_cb, ref_ib = split(single)
    per_rank = []
    for rank in range(world_size):
        s = make_sampler(ds, b, rank, world_size, num_samples_cls=2, seed=7)
        assert s.iters_per_epoch == single.iters_per_epoch
        s.set_epoch(2)
        per_rank.append(split(s))
    for t in range(single.iters_per_epoch):
        cb_t = sum((per_rank[r][0][t] for r in range(world_size)), [])
        ib_t = sum((per_rank[r][1][t] for r in range(world_size)), [])
        assert cb_t == ref_cb[t]
        assert ib_t == ref_ib[t]
    # instance-balanced items of different ranks never overlap in an epoch
    ib_sets = [set(np.concatenate(ib).tolist()) for _, ib in per_rank]
    assert sum(map(len, ib_sets)) == len(set().union(*ib_sets))


def test_deterministic_in_seed_and_epoch():
    ds = FakeLTDataset(COUNTS)
    a = make_sampler(ds, 8, seed=5)
    b = make_sampler(ds, 8, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(make_sampler(ds, 8, seed=6)) != first
    # the seed is synchronised / drawn when not given
    assert isinstance(make_sampler(ds, 8).seed, int)


def test_get_cat_ids_fallback_and_registry():

    class CatIdsDataset:
        accepts_stream_index = True

        def __init__(self, labels):
            self.labels = labels

        def __len__(self):
            return len(self.labels)

        def get_cat_ids(self, idx):
            return [int(self.labels[idx])]

    ref = FakeLTDataset(COUNTS)
    ds = CatIdsDataset(ref.labels)
    with mock.patch.object(mod, 'get_dist_info', return_value=(0, 1)):
        sampler = DATA_SAMPLERS.build(
            dict(type='DualClassBalancedSampler', batch_size=8, seed=0),
            default_args=dict(dataset=ds))
    assert isinstance(sampler, DualClassBalancedSampler)
    assert list(sampler) == list(make_sampler(ref, 8, seed=0))


def test_dataloader_batches():
    ds = FakeLTDataset(COUNTS)
    sampler = make_sampler(ds, 4, num_samples_cls=2, seed=0)
    loader = DataLoader(ds, batch_size=8, sampler=sampler)
    batches = list(loader)
    assert len(batches) == sampler.iters_per_epoch
    for batch in batches:
        assert batch['stream'].tolist() == [STREAM_CB] * 4 + [STREAM_IB] * 4
        labels = batch['label'][:4]
        assert labels[0] == labels[1] and labels[2] == labels[3]
        assert torch.equal(batch['label'],
                           torch.as_tensor(ds.labels[batch['index']]))


def test_errors():
    ds = FakeLTDataset(COUNTS)

    class Plain(FakeLTDataset):
        accepts_stream_index = False

    with pytest.raises(TypeError, match='accepts_stream_index'):
        make_sampler(Plain(COUNTS), 8)
    with pytest.raises(ValueError, match='divisible'):
        make_sampler(ds, 6, num_samples_cls=4)
    with pytest.raises(ValueError, match='positive integer'):
        make_sampler(ds, 0)
    with pytest.raises(ValueError, match='larger than the data set'):
        make_sampler(ds, 128, world_size=2)
    with pytest.raises(ValueError, match='non-negative'):
        make_sampler(ds, 8, seed=-1)
    # a class named in the metainfo but without images
    no_images = FakeLTDataset([3, 4, 5], classes=('a', 'b', 'c', 'd'))
    with pytest.raises(ValueError, match=r'no training image.*class 3\.'):
        make_sampler(no_images, 4)
    # a label outside the class list
    bad = FakeLTDataset([3, 4, 5], classes=('a', 'b'))
    with pytest.raises(ValueError, match=r'\[0, 2\)'):
        make_sampler(bad, 4)


def test_batch_sampler_writes_the_batch_once():
    ds = FakeLTDataset(COUNTS)
    ref = make_sampler(ds, 4, num_samples_cls=2, seed=0)
    ref.set_epoch(1)
    expected = list(DataLoader(ds, batch_size=8, sampler=ref))

    sampler = make_sampler(ds, None, num_samples_cls=2, seed=0)
    assert sampler.batch_size is None
    batch_sampler = DualStreamBatchSampler(sampler, batch_size=8)
    assert sampler.batch_size == 4
    assert len(batch_sampler) == sampler.iters_per_epoch
    loader = DataLoader(ds, batch_sampler=batch_sampler)
    # MMEngine's DistSamplerSeedHook reaches the sampler through here
    loader.batch_sampler.sampler.set_epoch(1)
    batches = list(loader)
    assert len(batches) == len(expected) == ref.iters_per_epoch
    for batch, ref_batch in zip(batches, expected):
        assert batch['stream'].tolist() == [STREAM_CB] * 4 + [STREAM_IB] * 4
        assert batch['index'].tolist() == ref_batch['index'].tolist()


def test_batch_sampler_from_a_config():
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmpretrain')
    ds = FakeLTDataset(COUNTS)
    loader = Runner.build_dataloader(
        dict(
            batch_size=8,
            dataset=ds,
            sampler=dict(
                type='DualClassBalancedSampler', num_samples_cls=2, seed=0),
            batch_sampler=dict(type='DualStreamBatchSampler')))
    assert isinstance(loader.batch_sampler, DualStreamBatchSampler)
    assert loader.batch_sampler.sampler.batch_size == 4
    assert len(loader) == len(ds) // 4
    batch = next(iter(loader))  # pseudo_collate: lists
    assert batch['stream'] == [STREAM_CB] * 4 + [STREAM_IB] * 4


def test_batch_sampler_errors():
    ds = FakeLTDataset(COUNTS)
    # a sampler with its own batch_size must agree with the loader's
    DualStreamBatchSampler(make_sampler(ds, 4, num_samples_cls=2), 8)
    with pytest.raises(ValueError, match='remove train_dataloader.sampler'):
        DualStreamBatchSampler(make_sampler(ds, 4, num_samples_cls=2), 16)
    for bad in (7, 0, True, 8.):
        with pytest.raises(ValueError, match='even integer'):
            DualStreamBatchSampler(make_sampler(ds, None), bad)
    with pytest.raises(ValueError, match='divisible'):
        DualStreamBatchSampler(make_sampler(ds, None, num_samples_cls=4), 12)
    with pytest.raises(TypeError, match='DualClassBalancedSampler'):
        DualStreamBatchSampler(range(10), 8)
    # without a batch size the sampler says how to get one
    with pytest.raises(RuntimeError, match='DualStreamBatchSampler'):
        list(make_sampler(ds, None))
    with pytest.raises(RuntimeError, match='DualStreamBatchSampler'):
        len(make_sampler(ds, None))
