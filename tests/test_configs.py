"""Every config parses, names registered components and builds its model.

The models are built on the ``meta`` device: parameter names, shapes and
``requires_grad`` without allocating weights (no init, no checkpoint read).
"""
from pathlib import Path

import pytest
from conftest import on_meta
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATA_SAMPLERS, DATASETS, HOOKS, METRICS, MODELS

import lpt_mmpretrain  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py')
    if '_base_' not in p.parts)


def test_configs_found():
    names = {Path(c).name for c in CONFIGS}
    for dataset in ('inat', 'places', 'cifar100_r100', 'cifar100_r50',
                    'cifar100_r10', 'digits'):
        assert f'phase1_{dataset}.py' in names
        assert f'phase2_{dataset}.py' in names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path):
    cfg = Config.fromfile(str(ROOT / path))
    assert cfg.default_scope == 'mmpretrain'
    assert 'lpt_mmpretrain' in cfg.custom_imports['imports']
    init_default_scope('mmpretrain')

    loader = cfg.train_dataloader
    assert DATASETS.get(loader.dataset.type) is not None
    assert DATA_SAMPLERS.get(loader.sampler.type) is not None
    if loader.sampler.type == 'DualClassBalancedSampler':
        # the loader holds one batch of each stream; the batch is written once
        assert loader.batch_sampler.type == 'DualStreamBatchSampler'
        assert 'batch_size' not in loader.sampler
        assert loader.batch_size % 2 == 0
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert METRICS.get(evaluator.type) is not None
    for hook in cfg.get('custom_hooks', []):
        assert HOOKS.get(hook.type) is not None

    with on_meta():  # no init_weights: no checkpoint read
        model = MODELS.build(cfg.model)
    head = cfg.model.get('head', {})
    if head.get('type') == 'CosineClsHead':
        assert model.head.fc.out_features == head.num_classes
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if cfg.model.type == 'LPTClassifier' and cfg.model.get('neck'):
        assert trainable == {'neck.prompt', 'neck.key', 'head.fc.weight'}
        assert cfg.model.phase1_checkpoint
    elif cfg.model.type == 'LPTClassifier':  # phase 1 (or a linear probe)
        prompt = {'backbone.prompt'} if model.backbone.prompt is not None \
            else set()
        assert {n for n in trainable if not n.startswith('head.')} == prompt
        assert 'head.fc.weight' in trainable


def test_vit_b_phase2_parameter_counts():
    cfg = Config.fromfile(str(ROOT / 'configs/lpt/phase2_places.py'))
    with on_meta():
        model = MODELS.build(cfg.model)
    # the counts per tensor are tests/test_benchmark_tools.py's
    # (count_params.py on this config)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0.01 < trainable / total < 0.02  # about 1.4% of ViT-B
