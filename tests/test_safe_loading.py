"""CheckedLoadImageFromFile: every decode failure names the file and the
fix; skip_bad=True skips, counts, and keeps the class-balanced stream within
the class."""
import numpy as np
import pytest
from fixtures.bad_images import make_split_file_root
from mmengine.registry import init_default_scope

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.datasets import SplitFileLTDataset
from lpt_mmpretrain.datasets.transforms.checked_loading import (
    CheckedLoadImageFromFile, ImageDecodeError, decode_image)
from lpt_mmpretrain.structures.dual_stream import STREAM_CB, STREAM_KEY


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    init_default_scope('mmpretrain')
    return make_split_file_root(tmp_path_factory.mktemp('bad'))


@pytest.mark.parametrize('backend', ['cv2', 'pillow', 'turbojpeg'])
@pytest.mark.parametrize('name,reason', [
    ('truncated.jpg', 'JPEG is truncated'),
    ('empty.jpg', 'empty \\(0 bytes'),
    ('page.jpg', 'cannot decode it'),
    ('missing.jpg', 'does not exist'),
])
def test_every_failure_names_file_cause_and_fix(root, backend, name, reason):
    if backend == 'turbojpeg':
        pytest.importorskip('turbojpeg')
    path = str(root / 'images' / 'c2' / name)
    with pytest.raises(ImageDecodeError, match=reason) as info:
        decode_image(path, backend)
    message = str(info.value)
    assert path in message
    assert 'tools/misc/verify_dataset.py' in message
    assert 'skip_bad=True' in message
    # a good one decodes
    img = decode_image(str(root / 'images' / 'c0' / '0.jpg'), backend)
    assert img.shape == (30, 40, 3)


def test_default_fails_on_the_bad_image(root):
    load = CheckedLoadImageFromFile()
    with pytest.raises(ImageDecodeError, match='empty.jpg'):
        load(dict(img_path=str(root / 'images' / 'c2' / 'empty.jpg')))
    out = load(dict(img_path=str(root / 'images' / 'c0' / '1.jpg')))
    assert out['img_shape'] == (30, 40)


def test_skip_bad_counts(root):
    load = CheckedLoadImageFromFile(skip_bad=True)
    for name in ('empty.jpg', 'truncated.jpg'):
        assert load(dict(img_path=str(root / 'images' / 'c2' / name))) \
            is None
    assert load.num_skipped == 2
    assert 'skip_bad=True' in repr(load)


def test_jpeg_with_data_after_the_image_is_not_truncated(root, tmp_path):
    good = (root / 'images' / 'c0' / '0.jpg').read_bytes()
    path = tmp_path / 'trailer.jpg'
    path.write_bytes(good + bytes(range(256)) * 8)  # 2 KiB camera trailer
    assert decode_image(str(path)).shape == (30, 40, 3)


def _dataset(root, skip_bad):
    return SplitFileLTDataset(
        ann_file='train.txt',
        data_root=str(root),
        data_prefix='images',
        num_classes=3,
        pipeline=[
            dict(type='CheckedLoadImageFromFile', skip_bad=skip_bad),
            dict(type='PackInputs')
        ])


def test_class_balanced_refetch_stays_in_the_class(root):
    dataset = _dataset(root, skip_bad=True)
    labels = dataset.get_gt_labels()
    bad = [
        i for i in range(len(dataset))
        if 'empty' in dataset.get_data_info(i)['img_path']
    ]
    np.random.seed(0)
    for _ in range(20):
        data = dataset[(bad[0], STREAM_CB)]
        sample = data['data_samples']
        assert sample.gt_label.item() == labels[bad[0]] == 2
        assert sample.metainfo[STREAM_KEY] == STREAM_CB
        path = sample.img_path
        assert not any(b in path for b in ('empty', 'truncated', 'page'))


def test_default_pipeline_fails_naming_the_file(root):
    dataset = _dataset(root, skip_bad=False)
    idx = next(
        i for i in range(len(dataset))
        if 'truncated' in dataset.get_data_info(i)['img_path'])
    with pytest.raises(ImageDecodeError, match='truncated.jpg'):
        dataset[(idx, STREAM_CB)]
