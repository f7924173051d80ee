"""Test-time augmentation the MMPretrain way: `tta_model` + `tta_pipeline`
(LIFT's five crops, lpt_mmpretrain.datasets.transforms.FiveCrop), used by
the packaged tools/test.py --tta."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.datasets.transforms import (FIVE_CROP_POSITIONS, FiveCrop,
                                                PositionCrop)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py')
    if '_base_' not in p.parts)


def _image(h=6, w=8):
    # every pixel distinct: crops are identified by their values
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)


@pytest.mark.parametrize('position,origin', [
    ('top_left', (0, 0)),
    ('top_right', (0, 3)),
    ('bottom_left', (2, 0)),
    ('bottom_right', (2, 3)),
    ('center', (1, 1)),
])
def test_position_crop(position, origin):
    img = _image()
    out = PositionCrop((5, 4), position)(dict(img=img.copy()))
    y, x = origin
    np.testing.assert_array_equal(out['img'], img[y:y + 4, x:x + 5])
    assert out['img_shape'] == (4, 5)


def test_position_crop_matches_torchvision_five_crop():
    tv = pytest.importorskip('torchvision.transforms.functional')
    img = _image(9, 11)
    tensor = torch.from_numpy(img).permute(2, 0, 1)
    # torchvision: (top_left, top_right, bottom_left, bottom_right, center)
    expected = tv.five_crop(tensor, [5, 6])
    order = ('top_left', 'top_right', 'bottom_left', 'bottom_right', 'center')
    for position, crop in zip(order, expected):
        out = PositionCrop((6, 5), position)(dict(img=img.copy()))['img']
        np.testing.assert_array_equal(out, crop.permute(1, 2, 0).numpy())


def test_position_crop_errors():
    with pytest.raises(ValueError, match='position must be one of'):
        PositionCrop(4, 'middle')
    with pytest.raises(ValueError, match='crop_size'):
        PositionCrop((0, 4))
    with pytest.raises(ValueError, match='larger than the 8x6 image'):
        PositionCrop(7)(dict(img=_image()))


def test_five_crop_packs_five_views():
    init_default_scope('mmpretrain')
    img = _image(36, 36)
    out = FiveCrop(crop_size=32)(dict(img=img, gt_label=3))
    assert set(out) == {'inputs', 'data_samples'}
    assert len(out['inputs']) == len(out['data_samples']) == 5
    for view, position in zip(out['inputs'], FIVE_CROP_POSITIONS):
        expected = PositionCrop(32, position)(dict(img=img.copy()))['img']
        assert view.shape == (3, 32, 32)
        np.testing.assert_array_equal(view.permute(1, 2, 0).numpy(), expected)
    assert all(s.gt_label.item() == 3 for s in out['data_samples'])


def test_five_crop_with_flips_gives_ten_views():
    init_default_scope('mmpretrain')
    flips = [
        dict(type='RandomFlip', prob=0.),
        dict(type='RandomFlip', prob=1.)
    ]
    five = FiveCrop(4, transforms=[flips, [dict(type='PackInputs')]])
    out = five(dict(img=_image(6, 6)))
    assert len(out['inputs']) == 10
    np.testing.assert_array_equal(out['inputs'][1].numpy(),
                                  out['inputs'][0].flip(-1).numpy())
    with pytest.raises(TypeError, match='list of lists'):
        FiveCrop(4, transforms=[dict(type='PackInputs')])
    with pytest.raises(ValueError, match='at least one'):
        FiveCrop(4, positions=())


def _load_packaged_test_tool():
    path = Path(importlib.util.find_spec('mmpretrain').origin).parent / \
        '.mim' / 'tools' / 'test.py'
    spec = importlib.util.spec_from_file_location('mmpretrain_test_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def packaged_test():
    return _load_packaged_test_tool()


@pytest.mark.parametrize('config', CONFIGS)
def test_every_config_tta_setup(config, packaged_test, tmp_path, monkeypatch):
    """MMPretrain's tools/test.py --tta --show-dir turns every config into a
    TTA model over views that its tta_pipeline builds (no data needed)."""
    from mmpretrain.registry import MODELS, TRANSFORMS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(ROOT / config))
    assert cfg.tta_model.type == 'AverageClsScoreTTA'
    size = cfg.model.backbone.get('img_size', 224)
    model_type = cfg.model.type
    lpt_digits = 'digits' in config and 'LPT' in cfg.model.backbone.type
    tta_pipeline = cfg.tta_pipeline
    # merge_args edits cfg in place
    monkeypatch.setattr('sys.argv', [
        'test.py', config, 'ckpt.pth', '--tta', '--show-dir',
        str(tmp_path / 'vis'), '--work-dir',
        str(tmp_path)
    ])
    merged = packaged_test.merge_args(cfg, packaged_test.parse_args())
    assert merged.model.type == 'AverageClsScoreTTA'
    assert merged.default_hooks.visualization.enable
    pipeline = merged.test_dataloader.dataset.pipeline
    assert pipeline == tta_pipeline
    # the views are the ones LIFT ensembles, at the model's input size
    five = [t for t in pipeline if t['type'] == 'FiveCrop']
    assert len(five) == 1, config
    assert five[0]['crop_size'] == size, config
    for transform in pipeline:
        TRANSFORMS.build(transform)
    if lpt_digits:
        tta = MODELS.build(merged.model)
        assert type(tta.module).__name__ == model_type


@pytest.mark.parametrize('config', [
    'configs/lpt/phase2_digits.py', 'configs/lpt/phase2_places.py',
    'configs/lpt/phase2_cifar100_r100.py'
])
def test_tta_pipeline_feeds_the_model_size(config):
    """An image of any size comes out as five crops of the model's size."""
    from mmengine.dataset import Compose
    from mmpretrain.registry import TRANSFORMS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(ROOT / config))
    pipeline = [
        t for t in cfg.tta_pipeline
        if not t['type'].endswith('LoadImageFromFile')
    ]
    pipeline = Compose([TRANSFORMS.build(t) for t in pipeline])
    size = cfg.model.backbone.get('img_size', 224)
    for h, w in ((100, 150), (17, 13)):
        out = pipeline(dict(img=np.zeros((h, w, 3), np.uint8)))
        assert [tuple(v.shape) for v in out['inputs']] == [(3, size, size)] * 5


@pytest.mark.slow
def test_packaged_test_tta_on_digits(digits_runs, packaged_tool, tmp_path):
    """tools/test.py --tta runs on a trained phase-2 model, its plain score
    is the one without --tta, and it differs (5 views averaged)."""
    config = ROOT / 'configs' / 'lpt' / 'phase2_digits.py'
    common = [digits_runs.phase2_full, '--work-dir', tmp_path]
    plain = packaged_tool('test.py', config, *common, '--cfg-options',
                          *digits_runs.phase2_options)
    # --tta wraps the model first: its options go under `model.module`.
    options = [
        o.replace('model.', 'model.module.', 1)
        for o in digits_runs.phase2_options
    ]
    tta = packaged_tool('test.py', config, *common, '--tta', '--out',
                        tmp_path / 'preds.pkl', '--cfg-options', *options)

    def top1(proc):
        return float(re.findall(r'long_tail/top1: ([\d.]+)', proc.stdout)[-1])

    assert 0 <= top1(tta) <= 100 and 0 <= top1(plain) <= 100
    import mmengine
    preds = mmengine.load(str(tmp_path / 'preds.pkl'))
    assert len(preds) == 300
    scores = np.stack([p['pred_score'].numpy() for p in preds])
    np.testing.assert_allclose(scores.sum(1), 1, rtol=1e-4)
