"""A known colour reaches the model as that colour, for every config.

Every config in ``configs/`` (found by globbing, so new configs are covered)
builds each of its train / val / test data sets on tiny fake data of the
same kind (CIFAR pickles, split files with JPEG and PNG images, an iNat JSON
with JPEG images, DigitsLT), runs the config's own pipeline and the model's
``data_preprocessor``, and checks the model input: channel c of an image of
uniform colour (R, G, B) must be ``(colour[c] - mean[c]) / std[c]``, in RGB
order, whatever crop, flip or resize the pipeline applies. Test pipelines
must also bring images of any size to the model's input size.

The test-time resize is checked against torchvision's ``Resize((256,
256))`` + ``CenterCrop(224)`` (the released code's transform) on a photo.
"""
import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fixtures.fake_cifar import accept_fake_cifar, write_fake_cifar
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.datasets import CIFAR10, CustomDataset
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.datasets import (CIFAR10LT, CIFAR100LT, INat2018,
                                     SplitFileLTDataset)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py')
    if '_base_' not in p.parts)
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
RGB = (250, 130, 10)  # three different values: any channel swap shows
# (height, width) of the fake images: smaller and larger than the model's
# input, not square
SIZES = {'jpg': (300, 451), 'png': (37, 53)}
JPEG_TOL = 3  # grey levels a JPEG of one colour may move


@pytest.fixture(scope='module', autouse=True)
def scope():
    init_default_scope('mmpretrain')


@pytest.fixture(scope='module')
def cifar_roots(tmp_path_factory):
    """Fake CIFAR-10 and CIFAR-100, one image of colour RGB per class."""
    roots = {}
    with pytest.MonkeyPatch.context() as mp:
        for cls, kind, num in ((CIFAR10LT, 'cifar10', 10), (CIFAR100LT,
                                                            'cifar100', 100)):
            root = tmp_path_factory.mktemp(kind)
            imgs = np.empty((num, 32, 32, 3), np.uint8)
            imgs[...] = RGB
            write_fake_cifar(root, kind, imgs, range(num), imgs, range(num),
                             [f'c{i}' for i in range(num)])
            accept_fake_cifar(mp, cls, root)
            roots[cls] = root
        yield roots


def _write_image(path: Path, ext: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.empty(SIZES[ext] + (3, ), np.uint8)
    img[...] = RGB[::-1]  # cv2 writes BGR arrays
    assert cv2.imwrite(str(path), img)


def _fake_files(root: Path, ds: dict, cls: type, ext: str) -> dict:
    """Write the annotation files the config names and one image; return
    the data set config pointed at them."""
    ds = copy.deepcopy(ds)
    ds['data_root'] = str(root)
    prefix = ds.get('data_prefix', '')
    prefix = prefix.get('img_path', '') if isinstance(prefix, dict) else prefix
    _write_image(root / prefix / f'img.{ext}', ext)
    ann_files = [ds['ann_file']]
    if ds.get('train_ann_file') is not None:
        ann_files.append(ds['train_ann_file'])
    if issubclass(cls, SplitFileLTDataset):
        num = ds.get('num_classes') or cls.default_num_classes or 3
        lines = ''.join(f'img.{ext} {i}\n' for i in range(num))
        for ann in ann_files:
            (root / ann).parent.mkdir(parents=True, exist_ok=True)
            (root / ann).write_text(lines)
    else:  # COCO-style JSON
        coco = dict(
            images=[dict(id=i, file_name=f'img.{ext}') for i in range(3)],
            annotations=[dict(image_id=i, category_id=i) for i in range(3)],
            categories=[dict(id=i, name=f'c{i}') for i in range(3)])
        for ann in ann_files:
            (root / ann).parent.mkdir(parents=True, exist_ok=True)
            (root / ann).write_text(json.dumps(coco))
    return ds


def _fake_custom(root: Path, ds: dict, ext: str) -> dict:
    """MMPretrain's CustomDataset layout the config reads (a folder per
    class, or an annotation file), two classes of one image each."""
    ds = copy.deepcopy(ds)
    ds['data_root'] = str(root)
    prefix = root / ds.get('data_prefix', '')
    names = ['c0', 'c1']
    if ds.get('ann_file'):
        _write_image(prefix / f'img.{ext}', ext)
        ann = root / ds['ann_file']
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(''.join(f'img.{ext} {i}\n' for i in range(2)))
        ds['classes'] = names
    else:
        for name in names:
            _write_image(prefix / name / f'img.{ext}', ext)
    return ds


def _cases(ds: dict, tmp_path: Path, cifar_roots: dict):
    """(label, data set config, kind) for the fakes of this data set."""
    cls = DATASETS.get(ds['type'])
    assert cls is not None, f"unregistered data set {ds['type']}"
    if issubclass(cls, CIFAR10):
        root = cifar_roots.get(cls)
        assert root is not None, (
            f'{cls.__name__}: add a fake CIFAR folder to cifar_roots')
        # one image per class: keep every class whatever rho the config has
        yield 'pickle', dict(ds, data_root=str(root), imbalance_ratio=1), \
            'file'
    elif issubclass(cls, SplitFileLTDataset):
        for ext in ('jpg', 'png'):
            yield ext, _fake_files(tmp_path / ext, ds, cls, ext), ext
    elif issubclass(cls, INat2018):
        yield 'jpg', _fake_files(tmp_path / 'jpg', ds, cls, 'jpg'), 'jpg'
    elif issubclass(cls, CustomDataset):  # the own-data templates
        for ext in ('jpg', 'png'):
            yield ext, _fake_custom(tmp_path / ext, ds, ext), ext
    elif 'data_root' not in ds:  # data sets in memory, e.g. DigitsLT
        yield 'memory', ds, 'memory'
    else:
        pytest.fail(f'{cls.__name__}: no fake data of its kind in this test '
                    '(add one to _cases).')


def _preprocessor(cfg: Config):
    pre = copy.deepcopy(
        cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
        or {})
    pre.setdefault('type', 'ClsDataPreprocessor')
    return MODELS.build(pre)


def _model_input(ds, pre, idx: int = 0) -> torch.Tensor:
    """(3, H, W) model input of sample ``idx``."""
    return pre(pseudo_collate([ds[idx]]), training=False)['inputs'][0]


@pytest.mark.parametrize('path', CONFIGS)
def test_colour_reaches_the_model(path, tmp_path, cifar_roots):
    cfg = Config.fromfile(str(ROOT / path))
    pre = _preprocessor(cfg)
    mean = pre.mean.flatten().double()
    std = pre.std.flatten().double()
    backbone = cfg.model.get('backbone', {})
    model_size = backbone.get('img_size', 224)
    seen = []
    for loader in LOADERS:
        ds_cfg = cfg[loader].dataset
        if ds_cfg in seen:  # test_dataloader = val_dataloader
            continue
        seen.append(ds_cfg)
        for label, ds, kind in _cases(ds_cfg, tmp_path / loader, cifar_roots):
            if kind != 'memory':
                # no serialisation: its gc.collect() costs a second here
                ds = dict(ds, serialize_data=False)
            dataset = DATASETS.build(ds)
            where = f'{path} {loader} ({label})'
            x = _model_input(dataset, pre).double()
            if kind == 'memory':
                # grey images (DigitsLT): three equal channels, the pixel
                # values normalised
                img = dataset.get_data_info(0)['img']
                assert (img == img[..., :1]).all(), where
                assert torch.allclose(x, x[:1].expand_as(x)), where
                if img.shape[:2] == tuple(x.shape[1:]):
                    gray = torch.from_numpy(img[..., 0]).double()
                    expected = (gray - mean[:, None, None]) / \
                        std[:, None, None]
                    assert torch.allclose(x, expected, atol=1e-5), where
                continue
            expected = (torch.tensor(RGB).double() - mean) / std
            tol = (JPEG_TOL if kind == 'jpg' else 0) / std + 1e-5
            err = (x - expected[:, None, None]).abs().amax(dim=(1, 2))
            assert (err <= tol).all(), (
                f'{where}: channel means {x.mean((1, 2)).tolist()}, '
                f'expected {expected.tolist()} (RGB {RGB})')
            if loader != 'train_dataloader':
                assert tuple(x.shape[1:]) == (model_size, model_size), (
                    f'{where}: a {SIZES.get(kind, (32, 32))} image reaches '
                    f'the model as {tuple(x.shape[1:])}, not {model_size}')


def test_all_kinds_are_covered():
    """The configs use every kind of data set this test fakes."""
    types = set()
    for path in CONFIGS:
        cfg = Config.fromfile(str(ROOT / path))
        types |= {cfg[loader].dataset.type for loader in LOADERS}
    for name in ('CIFAR100LT', 'CIFAR10LT', 'PlacesLT', 'ImageNetLT',
                 'INat2018', 'DigitsLT'):
        assert name in types


def _lt_transforms(name: str) -> list:
    base = Config.fromfile(
        str(ROOT / 'configs/_base_/datasets/lt_pipelines_224.py'))
    return [t for t in base[name] if t['type'] != 'PackInputs']


def _photos():
    from sklearn.datasets import load_sample_images
    return load_sample_images().images  # two RGB (427, 640, 3) photos


def test_test_resize_matches_torchvision():
    """Resize((256, 256)) + CenterCrop(224) as torchvision does them on PIL
    images (the released code): identical pixels."""
    from PIL import Image
    from torchvision import transforms as T
    pipeline = Compose(
        [TRANSFORMS.build(t) for t in _lt_transforms('test_transforms')])
    reference = T.Compose([T.Resize((256, 256)), T.CenterCrop(224)])
    for rgb in _photos():
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # as the image loader
        ours = pipeline(dict(img=bgr))['img'][..., ::-1]
        theirs = np.asarray(reference(Image.fromarray(rgb)))
        assert ours.shape == theirs.shape == (224, 224, 3)
        np.testing.assert_array_equal(ours, theirs)


def test_train_crop_matches_torchvision():
    """RandomResizedCrop: for the same crop box, the same pixels as
    torchvision's resized crop."""
    from PIL import Image
    from torchvision.transforms import functional as F
    cfg = _lt_transforms('train_transforms')[0]
    assert cfg['type'] == 'RandomResizedCrop'
    crop = TRANSFORMS.build(cfg)
    box = (31, 57, 300, 410)  # top, left, height, width
    crop.rand_crop_params = lambda img: box
    for rgb in _photos():
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        ours = crop(dict(img=bgr))['img'][..., ::-1]
        theirs = np.asarray(
            F.resized_crop(Image.fromarray(rgb), *box, [224, 224]))
        np.testing.assert_array_equal(ours, theirs)
