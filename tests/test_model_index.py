"""LPT models by name: `import lpt_mmpretrain` registers model-index.yml with
MMPretrain's ModelHub, so MMPretrain's own list_models / get_model /
inference_model know them."""
import os.path as osp
import re
from pathlib import Path

import mmcv
import numpy as np
import pytest
import yaml
from conftest import on_meta
from mmengine.config import Config

import lpt_mmpretrain  # noqa: F401
from lpt_mmpretrain.apis import (MODEL_INDEX, ModelIndexMixin,
                                 metainfo_of_config, register_lpt_models)

ROOT = Path(__file__).resolve().parents[1]
METAFILE = ROOT / 'configs' / 'lpt' / 'metafile.yml'
DIGITS = {
    'configs/lpt/phase1_digits.py':
    'lpt_vit-tiny-p8_digits-pre_digits-lt-phase1',
    'configs/lpt/phase2_digits.py':
    'lpt_vit-tiny-p8_digits-pre_digits-lt-phase2',
}
# MMPretrain's naming: {algorithm}_{backbone}_{pretraining}-pre_{data}, with
# `_3rdparty` for converted weights; the phase closes the data part.
NAME = re.compile(
    r'^lpt_[a-z0-9.-]+_[a-z0-9.-]+-pre(_3rdparty)?_[a-z0-9.-]+-phase[12]$')


@pytest.fixture(scope='module')
def metafile_models():
    with open(METAFILE) as f:
        return yaml.safe_load(f)['Models']


@pytest.fixture
def digit_image(tmp_path):
    """A 128-px RGB image of a digit (the test pipeline resizes it)."""
    from sklearn.datasets import load_digits
    img = (load_digits().images[3] * 255 / 16).astype(np.uint8)
    img = mmcv.imresize(img, (128, 128))
    path = str(tmp_path / 'digit.png')
    mmcv.imwrite(np.repeat(img[..., None], 3, axis=2), path)
    return path


def test_model_index_file_imports_the_metafile():
    with open(ROOT / 'model-index.yml') as f:
        index = yaml.safe_load(f)
    assert index == {'Import': ['configs/lpt/metafile.yml']}
    assert osp.samefile(MODEL_INDEX, ROOT / 'model-index.yml')


def test_model_index_library_accepts_the_index():
    modelindex = pytest.importorskip('modelindex')
    errors = modelindex.load(str(ROOT / 'model-index.yml')).check(silent=True)
    # README paths are repository-relative, as in MMPretrain's metafiles.
    assert [e for e in errors if 'Path to README file' not in e] == []


def test_list_models_knows_every_metafile_entry(metafile_models):
    from mmpretrain import list_models
    names = list_models('lpt*')
    assert names == sorted(m['Name'].lower() for m in metafile_models)
    for name in names:
        assert NAME.match(name), name
    # `task=` filtering works too: every entry names its task.
    assert list_models('lpt*', task='Image Classification') == names
    from mmpretrain import ImageClassificationInferencer
    assert set(names) <= set(ImageClassificationInferencer.list_models())


def test_registration_is_idempotent():
    first = register_lpt_models()
    assert first and register_lpt_models() == first


def test_every_entry_points_at_an_existing_config(metafile_models):
    from mmpretrain.apis import ModelHub
    for model in metafile_models:
        metainfo = ModelHub._models_dict[model['Name'].lower()]
        assert osp.isfile(metainfo.config), metainfo.config
        assert osp.samefile(metainfo.config, ROOT / model['Config'])
        assert [r.task for r in metainfo.results] == ['Image Classification']


@pytest.mark.parametrize('config', sorted(DIGITS))
def test_get_model_by_name_builds_the_config(config):
    from mmpretrain import get_model
    by_name = get_model(DIGITS[config])
    by_config = get_model(str(ROOT / config))
    assert type(by_name) is type(by_config)
    assert by_name._metainfo.name == DIGITS[config]
    assert sorted(by_name.state_dict()) == sorted(by_config.state_dict())
    assert by_name._dataset_meta['classes'] == tuple(str(i) for i in range(10))


def test_get_model_by_name_builds_vit_b():
    from mmpretrain import get_model
    with on_meta():  # no weights needed to check the build
        model = get_model('lpt_vit-base-p16_in21k-pre_places-lt-phase2')
    assert model.head.num_classes == 365
    assert model.backbone.embed_dims == 768


@pytest.mark.parametrize('config', sorted(DIGITS))
def test_inference_model_by_name(config, digit_image):
    from mmpretrain import inference_model
    result = inference_model(DIGITS[config], digit_image)
    assert result['pred_class'] in [str(i) for i in range(10)]
    assert result['pred_scores'].shape == (10, )


def test_metainfo_of_config():
    name = DIGITS['configs/lpt/phase2_digits.py']
    assert metainfo_of_config(str(ROOT /
                                  'configs/lpt/phase2_digits.py')).name == name
    own = metainfo_of_config('my_config.py')
    assert own.name is None
    assert [r.task for r in own.results] == ['Image Classification']


def test_mixin_survives_get_model_resetting_metainfo():
    """get_model(config) sets `_metainfo = None`; the mixin still answers."""
    from mmpretrain.models import ImageClassifier

    class Indexed(ModelIndexMixin, ImageClassifier):
        pass

    model = Indexed(
        backbone=dict(type='ResNet', depth=18),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=512))
    model._config = Config.fromfile(str(ROOT / 'configs/lpt/phase1_digits.py'))
    model._metainfo = None
    assert model._metainfo.name == DIGITS['configs/lpt/phase1_digits.py']
    model._config = Config(dict(model=dict()))
    assert [r.task
            for r in model._metainfo.results] == ['Image Classification']
    explicit = metainfo_of_config(str(ROOT / 'configs/lpt/phase2_digits.py'))
    model._metainfo = explicit
    assert model._metainfo is explicit


@pytest.mark.parametrize('config', sorted(DIGITS))
def test_inference_model_on_get_model_of_a_config(config, digit_image):
    """Needs LPTClassifier to inherit ModelIndexMixin (issue 11, item 4)."""
    from mmpretrain import get_model, inference_model
    model = get_model(str(ROOT / config))
    assert isinstance(model, ModelIndexMixin), (
        f'{type(model).__name__} does not inherit ModelIndexMixin, so '
        'mmpretrain.inference_model cannot pick an inferencer for it')
    result = inference_model(model, digit_image)
    assert result['pred_class'] in [str(i) for i in range(10)]
