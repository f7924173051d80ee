import numpy as np
import pytest
from mmpretrain.registry import DATASETS
from sklearn.datasets import load_digits

from lpt_mmpretrain.datasets import (DigitPairsLT, DigitsLT, compose_digits,
                                     exponential_profile)


@pytest.fixture(scope='module')
def pairs():
    return {s: DigitPairsLT(split=s) for s in ('train', 'val', 'test')}


def _sources(dataset):
    return [
        dataset.get_data_info(i)['source_idx'] for i in range(len(dataset))
    ]


def test_counts_and_labels(pairs):
    train = pairs['train']
    counts = train.cls_num_list
    assert sorted(counts, reverse=True) == exponential_profile(40, 100, 20)
    assert counts != sorted(counts, reverse=True)  # order shuffled
    np.testing.assert_array_equal(np.bincount(train.get_gt_labels()), counts)
    for split in ('val', 'test'):
        assert pairs[split].cls_num_list == counts
        np.testing.assert_array_equal(
            np.bincount(pairs[split].get_gt_labels(), minlength=100),
            [10] * 100)
    assert train.CLASSES[7] == '07' and len(train.CLASSES) == 100
    target = load_digits().target
    for d in pairs.values():
        for i in range(0, len(d), 37):
            info = d.get_data_info(i)
            left, right = info['source_idx']
            assert info['gt_label'] == 10 * target[left] + target[right]


def test_images_are_the_two_digits(pairs):
    info = pairs['train'].get_data_info(3)
    images = load_digits().images
    left, right = info['source_idx']
    np.testing.assert_array_equal(
        info['img'], compose_digits([images[left], images[right]], 32))
    assert info['img'].shape == (32, 32, 3)


def test_no_image_shared_between_splits(pairs):
    images = {s: {i for p in _sources(d) for i in p} for s, d in pairs.items()}
    pretrain_set = DigitsLT(split='pretrain')  # built once, not per image
    images['pretrain'] = set(
        pretrain_set.get_data_info(i)['source_idx'] for i in range(600))
    names = sorted(images)
    for a in names:
        for b in names:
            assert a == b or not images[a] & images[b], (a, b)
    for d in pairs.values():  # pairs are distinct
        sources = _sources(d)
        assert len(set(sources)) == len(sources)


def test_built_from_registry_and_deterministic(pairs):
    again = DATASETS.build(dict(type='DigitPairsLT', split='test'))
    assert _sources(again) == _sources(pairs['test'])
    other = DigitPairsLT(split='test', seed=1)
    assert _sources(other) != _sources(pairs['test'])


def test_test_split_kept_and_independent_of_val(pairs):
    # The test pairs of the releases before the val split existed.
    test = _sources(pairs['test'])
    assert test[:3] == [(178, 1128), (178, 1077), (1106, 55)]
    assert _sources(DigitPairsLT(split='test', num_val_per_class=5)) == test
    small_val = DigitPairsLT(split='val', num_val_per_class=5)
    train = {i for p in _sources(pairs['train']) for i in p}
    assert not {i for p in _sources(small_val) for i in p} & train


def test_bad_arguments():
    with pytest.raises(ValueError, match='split'):
        DigitPairsLT(split='pretrain')
    with pytest.raises(ValueError, match='imbalance_ratio'):
        DigitPairsLT(imbalance_ratio=0.5)
    with pytest.raises(ValueError, match='distinct pairs'):
        DigitPairsLT(split='test', num_test_pairs_per_class=1000)
    with pytest.raises(ValueError, match='no training image'):
        DigitPairsLT(max_per_class=2, imbalance_ratio=10)
    with pytest.raises(ValueError, match='num_val_per_class'):
        DigitPairsLT(num_val_per_class=0)
    with pytest.raises(ValueError, match='num_val_per_class=200'):
        DigitPairsLT(num_val_per_class=200)
