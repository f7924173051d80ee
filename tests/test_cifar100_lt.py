import numpy as np
import pytest
from fixtures.fake_cifar import accept_fake_cifar, write_fake_cifar
from mmpretrain.registry import DATASETS

from lpt_mmpretrain.datasets import (CIFAR100LT, check_class_counts,
                                     count_labels, exponential_profile)

NUM_CLASSES = 100
TRAIN_PER_CLASS = 6
TEST_PER_CLASS = 2


def _fake_images(num: int) -> np.ndarray:
    """(num, 3072) uint8 rows; image i has pixel 0 = i // 256, pixel 1 = i %
    256 of channel 0 (CHW order), so each image is identifiable."""
    rng = np.random.RandomState(123)
    data = rng.randint(0, 256, size=(num, 3072)).astype(np.uint8)
    data[:, 0] = np.arange(num) // 256
    data[:, 1] = np.arange(num) % 256
    return data


@pytest.fixture(scope='module')
def cifar_root(tmp_path_factory):
    """A tiny CIFAR-100 in the released pickle layout."""
    root = tmp_path_factory.mktemp('cifar')
    rng = np.random.RandomState(7)
    train_labels = rng.permutation(
        np.tile(np.arange(NUM_CLASSES), TRAIN_PER_CLASS)).tolist()
    test_labels = np.repeat(np.arange(NUM_CLASSES), TEST_PER_CLASS).tolist()

    def images(num):  # _fake_images rows (CHW) as HWC RGB images
        return _fake_images(num).reshape(num, 3, 32, 32).transpose(0, 2, 3, 1)

    write_fake_cifar(root, 'cifar100', images(len(train_labels)), train_labels,
                     images(len(test_labels)), test_labels,
                     [f'name{i}' for i in range(NUM_CLASSES)])
    with pytest.MonkeyPatch.context() as mp:
        accept_fake_cifar(mp, CIFAR100LT, root)
        yield root, np.array(train_labels)


def _ldam_selection(labels: np.ndarray, rho: float) -> np.ndarray:
    """The LDAM-DRW reference: global numpy seed 0 and np.random.shuffle."""
    img_max = len(labels) / NUM_CLASSES
    state = np.random.get_state()
    np.random.seed(0)
    try:
        keep = []
        for cls in range(NUM_CLASSES):
            num = int(img_max * ((1. / rho)**(cls / (NUM_CLASSES - 1.))))
            idx = np.where(labels == cls)[0]
            np.random.shuffle(idx)
            keep.append(idx[:num])
    finally:
        np.random.set_state(state)
    return np.concatenate(keep)


def test_profile_matches_paper_sizes():
    assert sum(exponential_profile(500, 100, 100)) == 10847
    assert sum(exponential_profile(500, 100, 50)) == 12608
    assert sum(exponential_profile(500, 100, 10)) == 19573
    counts = exponential_profile(500, 100, 100)
    assert counts[0] == 500 and counts[-1] == 5
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    assert exponential_profile(500, 100, 1) == [500] * 100
    with pytest.raises(ValueError, match='imbalance_ratio'):
        exponential_profile(500, 100, 0.5)


def test_count_labels_and_empty_classes():
    assert count_labels([0, 2, 2], 4) == [1, 0, 2, 0]
    assert count_labels([0, 2, 2]) == [1, 0, 2]
    with pytest.raises(ValueError, match='x hold the label 4, out of range'):
        count_labels([0, 4], 4, source='x')
    with pytest.raises(ValueError, match='negative label -1'):
        count_labels([0, -1])
    assert check_class_counts([3, 1]) == [3, 1]
    with pytest.raises(ValueError) as err:
        check_class_counts([3, 0, 0], ['a', 'b', 'c'],
                           source='f.txt',
                           name='D',
                           reason='Why.')
    assert str(err.value) == ("D: 2 of 3 classes have no training image in "
                              "f.txt: class 1 ('b'), 2 ('c'). Why.")


def test_train_split_follows_ldam_recipe(cifar_root):
    root, train_labels = cifar_root
    dataset = CIFAR100LT(data_root=str(root), split='train', imbalance_ratio=2)
    expected_counts = exponential_profile(TRAIN_PER_CLASS, NUM_CLASSES, 2)
    assert dataset.cls_num_list == expected_counts
    assert dataset.metainfo['cls_num_list'] == expected_counts
    assert len(dataset) == sum(expected_counts)
    assert dataset.CLASSES[:2] == ('name0', 'name1')
    assert dataset.accepts_stream_index

    keep = _ldam_selection(train_labels, 2)
    gt = dataset.get_gt_labels()
    np.testing.assert_array_equal(gt, train_labels[keep])
    for i in (0, 5, len(dataset) - 1):
        img = dataset.get_data_info(i)['img']
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        # red (channel 2 of BGR), row 0, columns 0 and 1 identify the
        # source image
        assert int(img[0, 0, 2]) * 256 + int(img[0, 1, 2]) == keep[i]


def test_seed_changes_selection(cifar_root):
    root, _ = cifar_root
    a = CIFAR100LT(data_root=str(root), imbalance_ratio=2, seed=0)
    b = CIFAR100LT(data_root=str(root), imbalance_ratio=2, seed=1)
    ids = [[int(d.get_data_info(i)['img'][0, 1, 2]) for i in range(len(d))]
           for d in (a, b)]
    assert ids[0] != ids[1]
    assert a.cls_num_list == b.cls_num_list


def test_test_split_is_balanced_with_train_counts(cifar_root):
    root, _ = cifar_root
    dataset = DATASETS.build(
        dict(
            type='CIFAR100LT',
            data_root=str(root),
            split='test',
            imbalance_ratio=2,
            pipeline=[dict(type='PackInputs')]))
    assert len(dataset) == NUM_CLASSES * TEST_PER_CLASS
    np.testing.assert_array_equal(
        np.bincount(dataset.get_gt_labels()), [TEST_PER_CLASS] * NUM_CLASSES)
    assert dataset.cls_num_list == exponential_profile(TRAIN_PER_CLASS,
                                                       NUM_CLASSES, 2)
    packed = dataset[3]
    assert tuple(packed['inputs'].shape) == (3, 32, 32)
    assert packed['data_samples'].gt_label.item() == dataset.get_cat_ids(3)[0]


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CIFAR100LT(data_root=str(tmp_path))
    msg = str(err.value)
    assert 'cifar-100-python' in msg and 'meta' in msg
    assert 'https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz' in msg


def test_empty_tail_class_is_refused(cifar_root):
    root, _ = cifar_root
    # 6 images per class: with rho = 100 the tail classes keep int(< 1) = 0.
    empty = [
        i for i, n in enumerate(
            exponential_profile(TRAIN_PER_CLASS, NUM_CLASSES, 100)) if n == 0
    ]
    with pytest.raises(ValueError, match='no training image') as err:
        CIFAR100LT(data_root=str(root), imbalance_ratio=100)
    msg = str(err.value)
    assert f'{len(empty)} of 100 classes' in msg
    assert f"{empty[0]} ('name{empty[0]}')" in msg
    assert f"{empty[-1]} ('name{empty[-1]}')" not in msg  # first few only


def test_bad_arguments(cifar_root):
    root, _ = cifar_root
    with pytest.raises(ValueError, match='split'):
        CIFAR100LT(data_root=str(root), split='val')
    with pytest.raises(ValueError, match='imbalance_ratio'):
        CIFAR100LT(data_root=str(root), imbalance_ratio=0.5)
    with pytest.raises(ValueError, match='data_root'):
        CIFAR100LT()
