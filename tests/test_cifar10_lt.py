import numpy as np
import pytest
from fixtures.fake_cifar import accept_fake_cifar, write_fake_cifar
from mmpretrain.datasets import CIFAR10
from mmpretrain.registry import DATASETS

from lpt_mmpretrain.datasets import CIFAR10LT, exponential_profile

NUM_CLASSES = 10
TRAIN_PER_CLASS = 20
TEST_PER_CLASS = 3
NAMES = [f'c{i}' for i in range(NUM_CLASSES)]


def _images(num: int, seed: int) -> np.ndarray:
    """(num, 32, 32, 3) RGB; red at (0, 0) and (0, 1) spells the index."""
    imgs = np.random.RandomState(seed).randint(
        0, 256, size=(num, 32, 32, 3)).astype(np.uint8)
    imgs[:, 0, 0, 0] = np.arange(num) // 256
    imgs[:, 0, 1, 0] = np.arange(num) % 256
    return imgs


def _index(img: np.ndarray) -> int:
    """The source index of a BGR image made by _images."""
    return int(img[0, 0, 2]) * 256 + int(img[0, 1, 2])


@pytest.fixture(scope='module')
def cifar10_root(tmp_path_factory):
    """A tiny CIFAR-10: 5 training batches and a test batch."""
    root = tmp_path_factory.mktemp('cifar10')
    rng = np.random.RandomState(3)
    train_labels = rng.permutation(
        np.tile(np.arange(NUM_CLASSES), TRAIN_PER_CLASS))
    test_labels = np.repeat(np.arange(NUM_CLASSES), TEST_PER_CLASS)
    train_images = _images(len(train_labels), 0)
    write_fake_cifar(root, 'cifar10', train_images, train_labels,
                     _images(len(test_labels), 1), test_labels, NAMES)
    with pytest.MonkeyPatch.context() as mp:
        accept_fake_cifar(mp, CIFAR10LT, root)
        yield root, train_labels, train_images


def test_profile_matches_paper_sizes():
    # n_i = int(5000 * (1 / rho) ** (i / 9))
    assert sum(exponential_profile(5000, 10, 100)) == 12406
    assert sum(exponential_profile(5000, 10, 50)) == 13996
    assert sum(exponential_profile(5000, 10, 10)) == 20431
    counts = exponential_profile(5000, 10, 100)
    assert counts[0] == 5000 and counts[-1] == 50


def test_train_split_follows_ldam_recipe(cifar10_root):
    root, labels, images = cifar10_root
    dataset = CIFAR10LT(data_root=str(root), imbalance_ratio=10)
    assert isinstance(dataset, CIFAR10)  # MMPretrain's loading
    expected = exponential_profile(TRAIN_PER_CLASS, NUM_CLASSES, 10)
    assert dataset.cls_num_list == expected and len(dataset) == sum(expected)
    assert dataset.CLASSES == tuple(NAMES)  # from batches.meta

    # the LDAM-DRW reference: np.random.seed(0), then shuffle class by class
    state = np.random.get_state()
    np.random.seed(0)
    keep = []
    for cls, num in enumerate(expected):
        idx = np.where(labels == cls)[0]
        np.random.shuffle(idx)
        keep.append(idx[:num])
    np.random.set_state(state)
    keep = np.concatenate(keep)
    np.testing.assert_array_equal(dataset.get_gt_labels(), labels[keep])
    for i in (0, 7, len(dataset) - 1):
        img = dataset.get_data_info(i)['img']
        assert _index(img) == keep[i]
        # BGR, as LoadImageFromFile gives image files
        np.testing.assert_array_equal(img, images[keep[i]][..., ::-1])


def test_test_split_is_balanced_with_train_counts(cifar10_root):
    root, _, _ = cifar10_root
    dataset = DATASETS.build(
        dict(
            type='CIFAR10LT',
            data_root=str(root),
            split='test',
            imbalance_ratio=10,
            pipeline=[dict(type='PackInputs')]))
    assert len(dataset) == NUM_CLASSES * TEST_PER_CLASS
    np.testing.assert_array_equal(
        np.bincount(dataset.get_gt_labels()), [TEST_PER_CLASS] * NUM_CLASSES)
    assert dataset.cls_num_list == exponential_profile(TRAIN_PER_CLASS,
                                                       NUM_CLASSES, 10)
    assert [
        _index(dataset.get_data_info(i)['img']) for i in range(len(dataset))
    ] == list(range(len(dataset)))
    assert tuple(dataset[0]['inputs'].shape) == (3, 32, 32)


def test_file_errors(cifar10_root, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CIFAR10LT(data_root=str(tmp_path))
    msg = str(err.value)
    assert 'cifar-10-batches-py' in msg and 'data_batch_1' in msg
    assert 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz' in msg
    # the fakes are not the released files: the md5 sums say so
    root, _, _ = cifar10_root
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CIFAR10LT, 'test_list', [['test_batch', '0' * 32]])
        with pytest.raises(ValueError, match='test_batch differ from the'):
            CIFAR10LT(data_root=str(root), imbalance_ratio=10)


def test_bad_arguments_and_empty_tail(cifar10_root):
    root, _, _ = cifar10_root
    with pytest.raises(ValueError, match='split'):
        CIFAR10LT(data_root=str(root), split='val')
    with pytest.raises(ValueError, match='imbalance_ratio'):
        CIFAR10LT(data_root=str(root), imbalance_ratio=0.5)
    with pytest.raises(ValueError, match='data_root'):
        CIFAR10LT()
    # 20 images per class: int(20 * 0.01 ** (i / 9)) = 0 for i >= 6
    with pytest.raises(
            ValueError, match=r"4 of 10 classes .* class 6 \('c6'\)"):
        CIFAR10LT(data_root=str(root), imbalance_ratio=100)
