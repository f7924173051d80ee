import copy
import json

import cv2
import numpy as np
import pytest
from mmpretrain.registry import DATASETS

from lpt_mmpretrain.datasets import INat2018

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

# Category ids unsorted and not contiguous: labels follow the sorted ids,
# 2 -> 0 ('b'), 5 -> 1 ('a'), 9 -> 2 ('c').
CATEGORIES = [
    dict(id=5, name='a', supercategory='x'),
    dict(id=2, name='b', supercategory='x'),
    dict(id=9, name='c', supercategory='y'),
]
# image id -> (file name, category id); training counts 3 / 2 / 1
TRAIN = {
    10: ('train/b/0.jpg', 2),
    11: ('train/b/1.jpg', 2),
    12: ('train/a/0.jpg', 5),
    13: ('train/b/2.jpg', 2),
    14: ('train/c/0.jpg', 9),
    15: ('train/a/1.jpg', 5),
}
VAL = {
    20: ('val/a/0.jpg', 5),
    21: ('val/c/0.jpg', 9),
}


def _coco(images: dict) -> dict:
    return dict(
        info={},
        images=[dict(id=i, file_name=f) for i, (f, _) in images.items()],
        annotations=[
            dict(id=100 + n, image_id=i, category_id=c)
            for n, (i, (_, c)) in enumerate(images.items())
        ],
        categories=copy.deepcopy(CATEGORIES))


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp('inat')
    for n, (file_name,
            _) in enumerate(list(TRAIN.values()) + list(VAL.values())):
        path = root / 'images' / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), np.full((8, 12, 3), n, np.uint8))
    (root / 'train2018.json').write_text(json.dumps(_coco(TRAIN)))
    (root / 'val2018.json').write_text(json.dumps(_coco(VAL)))
    return root


def _build(root, ann_file='train2018.json', **kwargs):
    return INat2018(
        ann_file=ann_file,
        data_root=str(root),
        data_prefix='images',
        pipeline=PIPELINE,
        **kwargs)


def _write(tmp_path, ann) -> str:
    path = tmp_path / 'ann.json'
    path.write_text(ann if isinstance(ann, str) else json.dumps(ann))
    return str(path)


def test_train_split(root):
    dataset = _build(root)
    assert dataset.CLASSES == ('b', 'a', 'c')
    assert dataset.cls_num_list == [3, 2, 1]
    assert len(dataset) == 6
    np.testing.assert_array_equal(dataset.get_gt_labels(), [0, 0, 1, 0, 2, 1])
    assert dataset.get_data_info(4)['img_path'] == str(root / 'images' /
                                                       'train/c/0.jpg')
    packed = dataset[4]
    assert tuple(packed['inputs'].shape) == (3, 8, 12)
    assert packed['data_samples'].gt_label.item() == 2


def test_val_split_reads_train_counts(root):
    dataset = DATASETS.build(
        dict(
            type='INat2018',
            ann_file='val2018.json',
            train_ann_file='train2018.json',
            data_root=str(root),
            data_prefix='images',
            pipeline=PIPELINE,
            test_mode=True))
    assert len(dataset) == 2
    assert dataset.cls_num_list == [3, 2, 1]
    np.testing.assert_array_equal(dataset.get_gt_labels(), [1, 2])
    # the val file alone lacks class 'b': refused as a training split
    with pytest.raises(ValueError, match=r"class 0 \('b'\)"):
        _build(root, ann_file='val2018.json')


def test_train_file_with_other_categories(root, tmp_path):
    ann = _coco(TRAIN)
    ann['categories'][0]['name'] = 'renamed'
    with pytest.raises(ValueError, match='different categories'):
        _build(
            root,
            ann_file='val2018.json',
            train_ann_file=_write(tmp_path, ann))


def _drop(section, key):

    def edit(ann):
        del ann[section][0][key]

    return edit


def _set(section, key, value):

    def edit(ann):
        ann[section][0][key] = value

    return edit


@pytest.mark.parametrize('edit,match', [
    (lambda ann: ann.pop('annotations'), "no list 'annotations'"),
    (_drop('images', 'file_name'), r'images\[0\] .* lacks one of the keys'),
    (_drop('annotations', 'category_id'), r'annotations\[0\] .* lacks'),
    (_drop('categories', 'name'), r'categories\[0\] .* lacks'),
    (_set('annotations', 'category_id',
          77), r"annotations\[0\] has the category_id 77, which is not in"),
    (_set('annotations', 'image_id',
          99), r'annotations\[0\] refers to the image_id 99'),
    (lambda ann: ann['annotations'].pop(), r'1 images have no annotation'),
    (lambda ann: ann['annotations'].append(dict(image_id=10, category_id=5)),
     'more than one annotation'),
])
def test_malformed_annotation(root, tmp_path, edit, match):
    ann = _coco(TRAIN)
    edit(ann)
    path = _write(tmp_path, ann)
    with pytest.raises(ValueError, match=match) as err:
        _build(root, ann_file=path)
    assert path in str(err.value)


def test_unreadable_or_missing(root, tmp_path):
    with pytest.raises(ValueError, match='is not valid JSON'):
        _build(root, ann_file=_write(tmp_path, '{"images": ['))
    with pytest.raises(FileNotFoundError, match='nope.json not found'):
        _build(root, ann_file='nope.json')
    with pytest.raises(FileNotFoundError, match='nope.json not found'):
        _build(root, ann_file='val2018.json', train_ann_file='nope.json')


def test_missing_images(root, tmp_path):
    images = dict(TRAIN)
    images[16] = ('train/c/missing.jpg', 9)
    path = _write(tmp_path, _coco(images))
    with pytest.raises(FileNotFoundError, match='1 of 7 images') as err:
        _build(root, ann_file=path)
    assert 'missing.jpg' in str(err.value)
    assert len(_build(root, ann_file=path, check_files=False)) == 7
