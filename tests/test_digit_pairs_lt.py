import numpy as np
import pytest
from mmpretrain.registry import DATASETS
from sklearn.datasets import load_digits

from lpt_mmpretrain.datasets import (DigitPairsLT, DigitsLT, compose_digits,
                                     exponential_profile)


@pytest.fixture(scope='module')
def pairs():
    return {s: DigitPairsLT(split=s) for s in ('train', 'test')}


def _sources(dataset):
    return [
        dataset.get_data_info(i)['source_idx'] for i in range(len(dataset))
    ]


def test_counts_and_labels(pairs):
    train, test = pairs['train'], pairs['test']
    counts = train.cls_num_list
    assert sorted(counts, reverse=True) == exponential_profile(40, 100, 20)
    assert counts != sorted(counts, reverse=True)  # order shuffled
    assert test.cls_num_list == counts
    np.testing.assert_array_equal(np.bincount(train.get_gt_labels()), counts)
    np.testing.assert_array_equal(
        np.bincount(test.get_gt_labels(), minlength=100), [10] * 100)
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
    train = {i for p in _sources(pairs['train']) for i in p}
    test = {i for p in _sources(pairs['test']) for i in p}
    pretrain_set = DigitsLT(split='pretrain')  # built once, not per image
    pretrain = set(
        pretrain_set.get_data_info(i)['source_idx'] for i in range(600))
    assert not train & test and not train & pretrain and not test & pretrain
    for d in pairs.values():  # pairs are distinct
        sources = _sources(d)
        assert len(set(sources)) == len(sources)


def test_built_from_registry_and_deterministic(pairs):
    again = DATASETS.build(dict(type='DigitPairsLT', split='test'))
    assert _sources(again) == _sources(pairs['test'])
    other = DigitPairsLT(split='test', seed=1)
    assert _sources(other) != _sources(pairs['test'])


def test_bad_arguments():
    with pytest.raises(ValueError, match='split'):
        DigitPairsLT(split='pretrain')
    with pytest.raises(ValueError, match='imbalance_ratio'):
        DigitPairsLT(imbalance_ratio=0.5)
    with pytest.raises(ValueError, match='distinct pairs'):
        DigitPairsLT(split='test', num_test_pairs_per_class=1000)
    with pytest.raises(ValueError, match='no training image'):
        DigitPairsLT(max_per_class=2, imbalance_ratio=10)
