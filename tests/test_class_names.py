"""Every data set names its classes: iNat from its JSON, Places-LT and
ImageNet-LT from an optional class-name file given in the config, CIFAR from
its meta file."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.fake_cifar import accept_fake_cifar, write_fake_cifar
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.datasets import CIFAR10LT, CIFAR100LT

ROOT = Path(__file__).resolve().parents[1]
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@pytest.fixture(autouse=True)
def scope():
    init_default_scope('mmpretrain')


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))


@pytest.mark.parametrize('config,num_classes', [
    ('configs/lpt/phase2_places.py', 365),
    ('configs/lpt/phase2_imagenet.py', 1000),
])
def test_split_file_class_name_file(config, num_classes, tmp_path):
    cfg = Config.fromfile(str(ROOT / config))
    _image(tmp_path / 'a.jpg')
    names = [f'class {i}' for i in range(num_classes)]
    (tmp_path / 'names.txt').write_text('\n'.join(names) + '\n')
    for loader in LOADERS:
        ds = cfg[loader].dataset
        assert 'classes' in ds, f'{config} {loader}: no `classes` argument'
        assert ds.classes is None  # optional
        for ann in (ds.ann_file, ds.get('train_ann_file')):
            if ann:
                (tmp_path /
                 ann).write_text(''.join(f'a.jpg {i}\n'
                                         for i in range(num_classes)))
        ds = dict(ds, data_root=str(tmp_path), serialize_data=False)
        assert DATASETS.build(ds).CLASSES is None
        named = DATASETS.build(dict(ds, classes=str(tmp_path / 'names.txt')))
        assert named.CLASSES == tuple(names)
        assert named.metainfo['classes'][3] == 'class 3'

    with pytest.raises(FileNotFoundError, match='class-name file'):
        DATASETS.build(dict(ds, classes=str(tmp_path / 'nope.txt')))
    (tmp_path / 'short.txt').write_text('\n'.join(names[:-1]))
    with pytest.raises(ValueError, match=f'{num_classes - 1} class names'):
        DATASETS.build(dict(ds, classes=str(tmp_path / 'short.txt')))


def test_inat_names_from_json(tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs/lpt/phase2_inat.py'))
    _image(tmp_path / 'a.jpg')
    categories = [dict(id=7, name='Aves'), dict(id=3, name='Fungi')]
    coco = dict(
        images=[dict(id=i, file_name='a.jpg') for i in range(2)],
        annotations=[
            dict(image_id=0, category_id=7),
            dict(image_id=1, category_id=3)
        ],
        categories=categories)
    for name in ('train2018.json', 'val2018.json'):
        (tmp_path / name).write_text(json.dumps(coco))
    for loader in LOADERS:
        ds = DATASETS.build(dict(cfg[loader].dataset, data_root=str(tmp_path)))
        assert ds.CLASSES == ('Fungi', 'Aves')  # sorted by category id
        assert ds.get_gt_labels().tolist() == [1, 0]


@pytest.mark.parametrize('cls,kind,num', [(CIFAR10LT, 'cifar10', 10),
                                          (CIFAR100LT, 'cifar100', 100)])
def test_cifar_names_from_meta(cls, kind, num, tmp_path, monkeypatch):
    imgs = np.zeros((num, 32, 32, 3), np.uint8)
    names = [f'{kind} name {i}' for i in range(num)]
    write_fake_cifar(tmp_path, kind, imgs, range(num), imgs, range(num), names)
    accept_fake_cifar(monkeypatch, cls, tmp_path)
    for split in ('train', 'test'):
        ds = cls(data_root=str(tmp_path), split=split, imbalance_ratio=1)
        assert ds.CLASSES == tuple(names)
    # given names win over the meta file
    given = cls(
        data_root=str(tmp_path),
        imbalance_ratio=1,
        metainfo=dict(classes=[str(i) for i in range(num)]))
    assert given.CLASSES[1] == '1'
