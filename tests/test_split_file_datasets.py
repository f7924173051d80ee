import cv2
import numpy as np
import pytest
from mmpretrain.registry import DATASETS

from lpt_mmpretrain.datasets import ImageNetLT, PlacesLT, SplitFileLTDataset

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """data_root with images/ (3 classes, one name with a space) and split
    files: train 3/2/1 images per class, val 1 per class."""
    root = tmp_path_factory.mktemp('splits')
    train = [('c0/a.png', 0), ('c0/b.png', 0), ('c0/with space.png', 0),
             ('c1/a.png', 1), ('c1/b.png', 1), ('c2/a.png', 2)]
    val = [('val/0.png', 0), ('val/1.png', 1), ('val/2.png', 2)]
    for i, (rel, _) in enumerate(train + val):
        path = root / 'images' / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        img = np.full((6, 10, 3), i * 20, dtype=np.uint8)
        assert cv2.imwrite(str(path), img)
    (root / 'train.txt').write_text(''.join(f'{p} {label}\n'
                                            for p, label in train) + '\n')
    (root / 'val.txt').write_text(''.join(f'{p}\t{label}\n'
                                          for p, label in val))
    return root


def _build(root, ann_file='train.txt', **kwargs):
    kwargs.setdefault('num_classes', 3)
    return SplitFileLTDataset(
        ann_file=ann_file,
        data_root=str(root),
        data_prefix='images',
        pipeline=PIPELINE,
        **kwargs)


def test_training_split(root):
    dataset = _build(root)
    assert len(dataset) == 6
    assert dataset.cls_num_list == [3, 2, 1]
    assert dataset.metainfo['cls_num_list'] == [3, 2, 1]
    np.testing.assert_array_equal(dataset.get_gt_labels(), [0, 0, 0, 1, 1, 2])
    info = dataset.get_data_info(2)
    assert info['img_path'] == str(root / 'images' / 'c0' / 'with space.png')
    packed = dataset[2]
    assert tuple(packed['inputs'].shape) == (3, 6, 10)
    assert int(packed['inputs'][0, 0, 0]) == 40
    assert packed['data_samples'].gt_label.item() == 0
    # num_classes inferred from the largest training label
    assert _build(root, num_classes=None).cls_num_list == [3, 2, 1]


def test_eval_split_reads_train_counts(root):
    dataset = DATASETS.build(
        dict(
            type='SplitFileLTDataset',
            ann_file='val.txt',
            train_ann_file='train.txt',
            data_root=str(root),
            data_prefix='images',
            test_mode=True,
            pipeline=PIPELINE))
    assert len(dataset) == 3
    assert dataset.cls_num_list == [3, 2, 1]
    assert dataset[1]['data_samples'].gt_label.item() == 1


def test_classes(root):
    dataset = _build(root, num_classes=None, classes=['x', 'y', 'z'])
    assert dataset.CLASSES == ('x', 'y', 'z')
    names = root / 'names.txt'
    names.write_text('x\ny\nz\n')
    assert _build(root, classes=str(names)).CLASSES == ('x', 'y', 'z')
    with pytest.raises(ValueError, match='2 class names are given but'):
        _build(root, classes=['x', 'y'], num_classes=3)
    # without num_classes, two names mean labels 0 and 1 only
    with pytest.raises(ValueError, match=r'label 2 is out of range \[0, 2\)'):
        _build(root, classes=['x', 'y'], num_classes=None)


def test_zero_count_class_is_refused(root):
    with pytest.raises(ValueError) as err:
        _build(root, num_classes=5)
    msg = str(err.value)
    assert '2 of 5 classes have no training image' in msg
    assert 'class 3, 4' in msg and 'train.txt' in msg
    with pytest.raises(ValueError, match=r"class 3 \('d'\)"):
        _build(root, num_classes=None, classes=list('abcd'))


@pytest.mark.parametrize('content,match', [
    ('c0/a.png 0\nc0/b.png\n', 'line 2: .* has no label'),
    ('c0/a.png 0\n\nc0/b.png zero\n', "line 3: the label 'zero' is not an"),
    ('c0/a.png 0\nc0/b.png 3\n', r'line 2: label 3 is out of range \[0, 3\)'),
    ('c0/a.png -1\n', r'line 1: label -1 is out of range'),
    ('\n  \n', 'lists no image'),
])
def test_malformed_split_file(root, tmp_path, content, match):
    ann = tmp_path / 'bad.txt'
    ann.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        _build(root, ann_file=str(ann))
    assert str(ann) in str(err.value)


def test_missing_files(root, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.txt not found'):
        _build(root, ann_file='nope.txt')
    with pytest.raises(FileNotFoundError, match='nope.txt not found'):
        _build(root, ann_file='val.txt', train_ann_file='nope.txt')
    ann = tmp_path / 'missing.txt'
    ann.write_text('c0/a.png 0\nc1/zz.png 1\nc2/yy.png 2\n')
    with pytest.raises(FileNotFoundError) as err:
        _build(root, ann_file=str(ann))
    msg = str(err.value)
    assert '2 of 3 images' in msg and 'zz.png' in msg
    assert 'check_files=False' in msg
    dataset = _build(root, ann_file=str(ann), check_files=False)
    assert len(dataset) == 3


def test_places_and_imagenet_lt_defaults(root, tmp_path):
    images = ['c0/a.png', 'c1/a.png', 'c2/a.png']
    for cls, num_classes in ((PlacesLT, 365), (ImageNetLT, 1000)):
        ann = tmp_path / f'{cls.__name__}_train.txt'
        # every class needs a training image; head class 0 gets two
        lines = [f'{images[i % 3]} {i}' for i in range(num_classes)]
        ann.write_text('\n'.join(lines + ['c0/b.png 0']))
        dataset = cls(
            ann_file=str(ann), data_root=str(root), data_prefix='images')
        assert len(dataset.cls_num_list) == num_classes
        assert dataset.cls_num_list[:2] == [2, 1]
        assert isinstance(dataset, SplitFileLTDataset)
        with pytest.raises(ValueError, match='no training image'):
            cls(ann_file='train.txt',
                data_root=str(root),
                data_prefix='images')


def test_image_check_runs_once_on_rank_0(root, tmp_path, monkeypatch):
    """Only rank 0 stats the images; the other ranks get its answer and
    raise the same error."""
    from lpt_mmpretrain.datasets import image_file_lt_dataset as module
    ann = tmp_path / 'missing.txt'
    ann.write_text('c0/a.png 0\nc1/zz.png 1\nc2/a.png 2\n')
    statted = []
    monkeypatch.setattr(module, '_missing_files',
                        lambda paths, threads: statted.extend(paths) or [])
    monkeypatch.setattr(module.dist, 'get_world_size', lambda: 2)
    monkeypatch.setattr(module.dist, 'is_main_process', lambda: False)
    sent = [str(root / 'images' / 'c1' / 'zz.png')]

    def broadcast(objects, src):
        assert src == 0 and objects == [None]
        objects[0] = sent

    monkeypatch.setattr(module.dist, 'broadcast_object_list', broadcast)
    with pytest.raises(FileNotFoundError, match='1 of 3 images') as err:
        _build(root, ann_file=str(ann))
    assert 'zz.png' in str(err.value) and statted == []
    sent = []
    assert len(_build(root, ann_file=str(ann))) == 3


def test_missing_images_found_in_parallel(tmp_path):
    from lpt_mmpretrain.datasets.image_file_lt_dataset import _missing_files
    paths = []
    for i in range(50):
        path = tmp_path / f'{i}.png'
        if i % 7:
            path.write_bytes(b'')
        paths.append(str(path))
    assert _missing_files(paths,
                          8) == [p for i, p in enumerate(paths) if i % 7 == 0]
