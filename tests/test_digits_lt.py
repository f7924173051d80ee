import numpy as np
import pytest
from mmpretrain.registry import DATASETS
from sklearn.datasets import load_digits

from lpt_mmpretrain.datasets import DigitsLT, exponential_profile
from lpt_mmpretrain.structures import STREAM_CB, STREAM_IB, STREAM_KEY

PACK = [dict(type='PackInputs')]


@pytest.fixture(scope='module')
def splits():
    return {
        split: DigitsLT(split=split, pipeline=PACK)
        for split in ('train', 'pretrain', 'test')
    }


def _source(dataset):
    return [
        dataset.get_data_info(i)['source_idx'] for i in range(len(dataset))
    ]


def test_splits_are_disjoint(splits):
    ids = {split: _source(d) for split, d in splits.items()}
    for split, idx in ids.items():
        assert len(set(idx)) == len(idx), split
    assert not set(ids['train']) & set(ids['test'])
    assert not set(ids['train']) & set(ids['pretrain'])
    assert not set(ids['pretrain']) & set(ids['test'])
    # labels agree with scikit-learn's
    target = load_digits().target
    for split, d in splits.items():
        np.testing.assert_array_equal(d.get_gt_labels(), target[ids[split]])


def test_counts(splits):
    target = load_digits().target
    n_max = int(np.bincount(target).min()) - 30 - 60
    expected = exponential_profile(n_max, 10, 10)
    assert expected[0] == n_max and expected[-1] == int(n_max / 10)
    train = splits['train']
    np.testing.assert_array_equal(np.bincount(train.get_gt_labels()), expected)
    for d in splits.values():  # training counts in every split
        assert d.cls_num_list == expected
        assert d.metainfo['cls_num_list'] == expected
        assert d.CLASSES == tuple('0123456789')
    np.testing.assert_array_equal(
        np.bincount(splits['test'].get_gt_labels()), [30] * 10)
    np.testing.assert_array_equal(
        np.bincount(splits['pretrain'].get_gt_labels()), [60] * 10)


def test_images(splits):
    info = splits['test'].get_data_info(0)
    img = info['img']
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert (img[..., 0] == img[..., 2]).all()
    # nearest upscaling by 4 repeats every pixel of the scaled 8x8 image
    nearest = DigitsLT(split='test', interpolation='nearest')
    info = nearest.get_data_info(0)
    raw = load_digits().images[info['source_idx']]
    scaled = np.round(raw * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(info['img'][..., 1],
                                  np.kron(scaled, np.ones((4, 4), np.uint8)))
    packed = splits['train'][0]
    assert tuple(packed['inputs'].shape) == (3, 32, 32)
    assert STREAM_KEY not in packed['data_samples']
    small = DATASETS.build(
        dict(type='DigitsLT', split='test', img_size=16, seed=3))
    assert small.get_data_info(0)['img'].shape == (16, 16, 3)
    assert _source(small) != _source(splits['test'])


def test_bad_arguments():
    with pytest.raises(ValueError, match='split'):
        DigitsLT(split='val')
    with pytest.raises(ValueError, match='imbalance_ratio'):
        DigitsLT(imbalance_ratio=0.5)
    with pytest.raises(ValueError, match='tail classes get no training'):
        DigitsLT(imbalance_ratio=1000)
    with pytest.raises(ValueError, match='training images remain'):
        DigitsLT(num_test_per_class=100, num_pretrain_per_class=100)


# LongTailMixin: (index, stream) indices of DualClassBalancedSampler


def test_stream_index(splits):
    train = splits['train']
    assert train.accepts_stream_index
    plain = train[5]
    for stream in (STREAM_CB, STREAM_IB, np.int64(STREAM_IB)):
        data = train[(np.int64(5), stream)]
        assert data['data_samples'].get(STREAM_KEY) == int(stream)
        assert isinstance(data['data_samples'].get(STREAM_KEY), int)
        assert (data['inputs'] == plain['inputs']).all()
        assert data['data_samples'].gt_label == plain['data_samples'].gt_label


def test_stream_index_errors(splits):
    with pytest.raises(ValueError, match='stream'):
        splits['train'][(5, 2)]
    with pytest.raises(ValueError, match=r'\(index, stream\)'):
        splits['train'][(5, 0, 1)]
    no_pack = DigitsLT(split='test')
    assert isinstance(no_pack[0], dict)
    with pytest.raises(KeyError, match='PackInputs'):
        no_pack[(0, STREAM_CB)]


# layouts, compose_digits, and the configs' test pipeline


def test_layouts_draw_the_digit_in_one_half():
    full = DigitsLT(split='pretrain', interpolation='nearest')
    left = DigitsLT(split='pretrain', layout='left', interpolation='nearest')
    right = DigitsLT(split='pretrain', layout='right', interpolation='nearest')
    assert _source(full) == _source(left) == _source(right)
    raw = load_digits().images[left.get_data_info(0)['source_idx']]
    scaled = np.round(raw * 255 / 16).astype(np.uint8)
    img_l = left.get_data_info(0)['img'][..., 0]
    img_r = right.get_data_info(0)['img'][..., 0]
    # 16x16 canvas upscaled by 2: the digit at rows 8..24, columns 0..16
    np.testing.assert_array_equal(img_l[8:24, :16],
                                  np.kron(scaled, np.ones((2, 2), np.uint8)))
    np.testing.assert_array_equal(img_r[8:24, 16:], img_l[8:24, :16])
    assert img_l[:, 16:].max() == 0 and img_l[:8].max() == 0
    with pytest.raises(ValueError, match='layout'):
        DigitsLT(layout='top')


def test_compose_digits():
    from lpt_mmpretrain.datasets import compose_digits
    a, b = np.full((8, 8), 16.), np.zeros((8, 8))
    img = compose_digits([a, b], 16, 'nearest')
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    assert (img[4:12, :8] == 255).all() and img[4:12, 8:].max() == 0
    assert img[:4].max() == 0 and img[12:].max() == 0
    np.testing.assert_array_equal(
        compose_digits([a], 8, 'nearest')[..., 0], np.full((8, 8), 255))


def test_test_pipeline_resizes_any_input():
    """A 128-px image of a digit gives the model the 32-px one (issue 11)."""
    import mmcv
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmpretrain.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile('configs/lpt/phase1_digits.py')
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    info = DigitsLT(split='test').get_data_info(0)
    big = mmcv.imresize(info['img'], (128, 128), interpolation='bilinear')
    out = pipeline(dict(img=big, gt_label=info['gt_label']))
    ref = pipeline(dict(img=info['img'], gt_label=info['gt_label']))
    assert tuple(out['inputs'].shape) == (3, 32, 32)
    diff = (out['inputs'].float() - ref['inputs'].float()).abs().mean()
    assert diff < 10  # of 255: the same digit
